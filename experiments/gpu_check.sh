#!/usr/bin/env bash
# One device call (see experiments/README.md): benchmarks, then the full-length default DCGAN run
# on Fashion-MNIST, then 10,000 samples of its last checkpoint for FID computed on the CPU machine.
# Needs .whl (hydra-core, omegaconf, antlr4) and .devdata/FashionMNIST/raw carried along.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 WANDB_MODE=disabled
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import torch, lightning; print(torch.__version__, lightning.__version__)" | tee -a "$OUT/device.txt"

python3 experiments/benchmark.py --device cuda --image-size 64 --channels 3 --batch-size 512 2>/dev/null | tee "$OUT/bench_64x64_b512.jsonl"
python3 experiments/benchmark.py --device cuda 2>/dev/null | tee "$OUT/bench_28x28_b64.jsonl"

start=$(date +%s)
python3 run.py logger=csv data.root=.devdata model.eval_fid=false optimized_metric=null test=false \
    hydra.run.dir=/tmp/gpurun +trainer.max_time=00:00:05:00 > "$OUT/train.log" 2>&1
echo "train rc=$? seconds=$(( $(date +%s) - start ))" | tee -a "$OUT/device.txt"
tail -3 "$OUT/train.log"
python3 -m gans.sample /tmp/gpurun/checkpoints/last.ckpt 10000 "$OUT/samples_last.npz" --seed 0
cp /tmp/gpurun/csv/version_0/metrics.csv "$OUT/metrics.csv"
cp "$(ls /tmp/gpurun/samples/*.png | tail -1)" "$OUT/samples_grid.png"
python3 -c "import torch; s=torch.load('/tmp/gpurun/checkpoints/last.ckpt', weights_only=True); print('epoch', s['epoch'], 'global_step', s['global_step'])" | tee -a "$OUT/device.txt"
