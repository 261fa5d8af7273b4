#!/usr/bin/env bash
# Issue 13's GPU rows in one call, under 10 minutes on one H200: framework vs plain loop (speed,
# ratio, host overhead per iteration, peak GPU memory of each loop) for
#   - the lecture's 64x64 DCGAN, batch 512, bf16: channels_last (the GPU default), without it, compiled;
#   - the 28x28 DCGAN, batch 64, bf16: eager and compiled;
#   - CycleGAN 256x256 batch 1; Pix2pix 256x256 batch 1 and 16;
# and FID over 10,000 generated images, timed (experiments/fid_speed.py).
# Rows run in order of priority; a row that would not finish before the deadline is skipped and says so.
#
# Output: one JSON line per row in $OUT/gpu_speed_check.jsonl ({"row", "seconds", "rc", "result": the
# script's last JSON line}), every row's full output in $OUT/gpu_speed_check.log.
#
# Here, once, before the call (needs pip and the cached FID weights, ~/.cache/gans):
#   bash experiments/gpu_speed_check.sh --prepare
#     -> .whl/  torch-fidelity (the lent image lacks it; FID's Inception needs it)
#     -> .fidw/ the Inception weights as float16 (46 MB; the float32 file is over the transfer limit:
#              the time is the same, the FID value is then not exact and is not reported)
#     both ignored through .git/info/exclude.
# On the lent machine (the device tool):
#   run(command="bash experiments/gpu_speed_check.sh", carry=[".whl", ".fidw"], timeout_s=600)
# Check every row on this CPU with tiny sizes (parses, runs, writes its line):
#   OUT=/tmp/gpu_speed_check PYTHON=.venv/bin/python bash experiments/gpu_speed_check.sh --dry-run
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu_speed_check}
DEADLINE=${GPU_CHECK_SECONDS:-570}   # the device tool's per-command limit is 600 s
mode=${1:-gpu}

if [ "$mode" = "--prepare" ]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> "$(git rev-parse --git-path info/exclude)"
    grep -qx '/.fidw/' .git/info/exclude 2>/dev/null || echo /.fidw/ >> "$(git rev-parse --git-path info/exclude)"
    mkdir -p .whl .fidw
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d .whl torch-fidelity==0.4.0 || exit 1
    "$PY" experiments/fid_speed.py --export-half-weights .fidw/inception-fp16.pth || exit 1
    du -sh .whl .fidw
    exit 0
fi

mkdir -p "$OUT"
: > "$OUT/gpu_speed_check.jsonl"
: > "$OUT/gpu_speed_check.log"
if [ "$mode" = "gpu" ]; then
    if ls .whl/*.whl > /dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
            && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$OUT/gpu_speed_check.log" 2>&1
    BENCH="experiments/benchmark.py --device cuda"
    FID_WEIGHTS=$([ -f .fidw/inception-fp16.pth ] && echo "--weights .fidw/inception-fp16.pth")
elif [ "$mode" = "--dry-run" ]; then
    # Every row's code path on the CPU, with networks and step counts too small to mean anything.
    BENCH="experiments/benchmark.py --device cpu --width 4 --warmup 2 --steps 2 --repeats 1"
    FID_WEIGHTS=""
else
    echo "usage: $0 [--prepare | --dry-run]  (no argument: the GPU rows)" >&2
    exit 2
fi
export PYTHONUNBUFFERED=1
start=$(date +%s)

# row NAME ESTIMATED_SECONDS [--dry ARGS --] ARGS...: run one script; on --dry-run the ARGS after --dry replace the sizes.
row() {
    local name=$1 estimate=$2
    shift 2
    local dry=()
    if [ "${1:-}" = "--dry" ]; then
        shift
        while [ "$1" != "--" ]; do dry+=("$1"); shift; done
        shift
    fi
    local args=("$@")
    [ "$mode" = "--dry-run" ] && args=("${args[0]}" "${dry[@]}") && estimate=60
    local now left
    now=$(date +%s); left=$((DEADLINE - (now - start)))
    if [ "$mode" = "gpu" ] && [ "$left" -lt "$estimate" ]; then
        echo "{\"row\": \"$name\", \"skipped\": \"${left} s left, about ${estimate} s needed\"}" >> "$OUT/gpu_speed_check.jsonl"
        return
    fi
    local command
    if [ "${args[0]}" = "fid" ]; then command="experiments/fid_speed.py ${args[*]:1}"; else command="$BENCH ${args[*]:1}"; fi
    echo "=== $name: $PY $command" >> "$OUT/gpu_speed_check.log"
    local t0=$SECONDS rc
    # shellcheck disable=SC2086
    timeout "$((left > 5 ? left - 5 : 1))" "$PY" $command > "$OUT/row.out" 2>> "$OUT/gpu_speed_check.log"
    rc=$?
    cat "$OUT/row.out" >> "$OUT/gpu_speed_check.log"
    "$PY" - "$name" "$((SECONDS - t0))" "$rc" "$command" "$OUT/row.out" >> "$OUT/gpu_speed_check.jsonl" <<'EOF'
import json, sys
name, seconds, rc, command, path = sys.argv[1:]
lines = [line for line in open(path).read().splitlines() if line.startswith("{")]
try:
    result = json.loads(lines[-1]) if lines else None
except json.JSONDecodeError:
    result = None
print(json.dumps({"row": name, "seconds": int(seconds), "rc": int(rc), "command": command, "result": result}))
EOF
    rm -f "$OUT/row.out"
}

TINY_DCGAN=(--image-size 32 --channels 1 --batch-size 4 --latent-dim 8)
TINY_PAIRS=(--image-size 32 --channels 1 --batch-size 2)
row dcgan64_b512_bf16_channels_last 60 --dry "${TINY_DCGAN[@]}" -- bench --image-size 64 --channels 3 --batch-size 512
row dcgan64_b512_bf16_no_channels_last 60 --dry "${TINY_DCGAN[@]}" --no-channels-last -- \
    bench --image-size 64 --channels 3 --batch-size 512 --no-channels-last
row dcgan28_b64_bf16 45 --dry "${TINY_DCGAN[@]}" -- bench
row fid_10000 60 --dry --num 8 --batch-size 4 --image-size 32 --channels 1 --width 4 --device cpu -- \
    fid --num 10000 --batch-size 500 --image-size 64 --channels 3 $FID_WEIGHTS
row pix2pix256_b1 60 --dry --model pix2pix "${TINY_PAIRS[@]}" -- bench --model pix2pix --steps 200 --repeats 2
row pix2pix256_b16 60 --dry --model pix2pix "${TINY_PAIRS[@]}" -- bench --model pix2pix --batch-size 16 --steps 100 --repeats 2
row cyclegan256_b1 75 --dry --model cyclegan "${TINY_PAIRS[@]}" -- bench --model cyclegan --steps 150 --repeats 2
row dcgan64_b512_bf16_compiled 150 --dry "${TINY_DCGAN[@]}" --compile -- \
    bench --image-size 64 --channels 3 --batch-size 512 --compile --repeats 2
row dcgan28_b64_bf16_compiled 120 --dry "${TINY_DCGAN[@]}" --compile -- bench --compile --repeats 2
# CUDA graphs through inductor (mode reduce-overhead): the host-bound small batch is where they pay.
row dcgan28_b64_bf16_cudagraphs 120 --dry "${TINY_DCGAN[@]}" --compile -- bench --compile reduce-overhead --repeats 2
echo "{\"total_seconds\": $(( $(date +%s) - start ))}" >> "$OUT/gpu_speed_check.jsonl"
cat "$OUT/gpu_speed_check.jsonl"
