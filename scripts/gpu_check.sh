#!/usr/bin/env bash
# GPU check of the reference model, one bounded run (about 10 minutes, each part under its own timeout) on a
# CUDA machine (the `device` tool's H200: python3 there has torch and transformers).
#
#   GOLDEN=.golden/vidstg_tempagg bash scripts/gpu_check.sh
#
# 1. Throughput: the FULL-SIZE vidstg-tempagg model (Swin-B, EVA ViT-g, OPT-2.7B) with random
#    weights, fp16 autocast as the official evaluation, on a generated 64-frame 480p video:
#    frames/s (detection + tracking), seconds per caption, peak GPU memory.
# 2. CPU-vs-GPU agreement on a golden bundle made by the official code: the golden check on
#    CPU (fp32, must pass at 1e-5), on CUDA in fp32 with TF32 off (largest difference per
#    stage), and on CUDA with fp16 autocast (reported; fp16 is not expected to meet 1e-5).
# 3. Training: 50 steps of the FULL-SIZE `paper` configuration (Swin-B, EVA ViT-g, OPT-2.7B,
#    random weights) under torchrun with one process (the DistributedDataParallel path),
#    bf16 autocast, batch 4 clips of generated 480x854 video: steps/s, clips/s and peak
#    GPU memory from the run's train_log.jsonl. TRAIN_CONFIG=tiny runs the same on CPU.
#
# The device machine has no pycocotools; carry its wheel (and the golden bundle, which lives
# outside the repository) in folders ignored by git, e.g. from the repository root:
#   echo /.whl/ >> .git/info/exclude; echo /.golden/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 -d .whl pycocotools orjson
#   mkdir -p .golden && cp -r ../shared/golden/model/vidstg_tempagg .golden/
# then run with carry [".whl", ".golden"] and `bash scripts/gpu_check.sh`.
set -uo pipefail
cd "$(dirname "$0")/.."
GOLDEN="${GOLDEN:-.golden/vidstg_tempagg}"
OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if [ -d .whl ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"

status=0
echo "== 1. throughput: full-size vidstg-tempagg, fp16 autocast, 64 frames at 480x854"
timeout 300 $PY benchmarks/predict_speed.py --config vidstg-tempagg --device cuda --frames 64 \
    --height 480 --width 854 --captions 4 --json "$OUT/predict_speed_cuda.json" || status=1

if [ -f "$GOLDEN/outputs.pt" ]; then
    echo "== 2a. golden check on CPU (fp32, tolerance 1e-5)"
    timeout 120 $PY -m reference_model golden-check "$GOLDEN" --device cpu --threads 8 | tee "$OUT/golden_cpu.txt" || status=1
    echo "== 2b. golden check on CUDA, fp32, TF32 off (CPU-vs-GPU agreement)"
    timeout 120 $PY -m reference_model golden-check "$GOLDEN" --device cuda --tolerance 1e-4 | tee "$OUT/golden_cuda_fp32.txt" || status=1
    echo "== 2c. golden check on CUDA, fp16 autocast (reported only)"
    timeout 120 $PY -m reference_model golden-check "$GOLDEN" --device cuda --autocast | tee "$OUT/golden_cuda_fp16.txt" || true
else
    echo "no golden bundle at $GOLDEN: skipping the CPU-vs-GPU agreement" && status=1
fi

TRAIN_CONFIG="${TRAIN_CONFIG:-paper}"
echo "== 3. training: $TRAIN_CONFIG, 50 steps, torchrun (DDP, one process), autocast"
rm -rf "$OUT/train"
start=$(date +%s)
timeout 420 $PY -m torch.distributed.run --nproc_per_node=1 --master_port=29517 -m reference_model train \
    --config "$TRAIN_CONFIG" --data "synthetic:num_videos=8,num_frames=8,height=${TRAIN_HEIGHT:-480},width=${TRAIN_WIDTH:-854},seed=0" \
    --steps 50 --batch-size 4 --checkpoint-every 1000 --log-every 10 --out "$OUT/train" || status=1
echo "wall time (build, 50 steps, final checkpoint): $(( $(date +%s) - start )) s"
$PY - "$OUT/train/train_log.jsonl" <<'PY' || status=1
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
steady = lines[1:] or lines  # the first window includes start-up
print(f"clips/s {sum(l['clips_per_s'] for l in steady) / len(steady):.2f} "
      f"(steps/s {sum(l['clips_per_s'] for l in steady) / len(steady) / 4:.3f}), "
      f"peak memory {max(l['peak_memory_gib'] for l in lines):.1f} GiB, "
      f"losses at step {lines[-1]['step']}: " + ", ".join(f"{k} {v:.3f}" for k, v in lines[-1].items()
      if k not in ("step", "lr", "clips_per_s", "memory_gib", "peak_memory_gib", "skipped")))
PY
exit $status
