#!/usr/bin/env bash
# One device call for the AE/VAE anchors (experiments/README.md, section 5): the VAE with the
# ex-post mixture and the AE at full length on Fashion-MNIST, then 10,000 samples of each (the VAE
# from the mixture and from N(0, I)) brought back under $OUT; FID 10k vs the 10k test images is
# computed on the CPU machine with `python -m gans.fid` (the Inception weights exceed the carry).
# Needs .whl (hydra-core, omegaconf, antlr4) and .devdata/FashionMNIST/raw carried along, as gpu_check.sh.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 WANDB_MODE=disabled
export OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"
for model in vae ae; do
  start=$(date +%s)
  # Evaluation without FID still fits the mixture at every validation; the checkpoint keeps it.
  python3 run.py model=$model model.prior=expost logger=csv data.root=.devdata model.eval_fid=false \
      optimized_metric=null hydra.run.dir=/tmp/$model +trainer.max_time=00:00:04:00 > "$OUT/$model.log" 2>&1
  echo "$model rc=$? seconds=$(( $(date +%s) - start ))" | tee -a "$OUT/device.txt"
  python3 -m gans.sample /tmp/$model/checkpoints/last.ckpt 10000 "$OUT/${model}_expost.npz" --seed 0
  cp /tmp/$model/csv/version_0/metrics.csv "$OUT/${model}_metrics.csv"
done
# The VAE's own prior, from the same checkpoint (the config's prior switched at load).
python3 - <<'PY'
import os
from pathlib import Path

import numpy as np

from gans.checkpoint import load_model
from gans.generation import sample

model = load_model(Path("/tmp/vae/checkpoints/last.ckpt"), "cuda")
model.prior = "normal"
np.savez_compressed(Path(os.environ["OUT"]) / "vae_normal.npz", images=sample(model, 10000, seed=0))
PY
