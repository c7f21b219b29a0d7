#!/bin/sh
# DINOv2 forward, images/s at 224 px: the LibTorch encoder (bench_dinov2) beside the PyTorch-eager reference
# (dinov2_reference.py on Debian's torch), same weights, same threads, same batch, one after the other.
#
#   bench/reference/run_dinov2_bench.sh BUILD_DIR [THREADS] [BATCH] [ITERS]
#
# The first run writes seeded random ViT-S/14 and ViT-B/14 weights (Hugging Face naming) to
# $BUILD_DIR/bench-weights; the reference first checks itself against the dinov2_forward fixtures.
set -eu
build=${1:?usage: run_dinov2_bench.sh BUILD_DIR [THREADS] [BATCH] [ITERS]}
threads=${2:-$(nproc)}
batch=${3:-8}
iters=${4:-5}
here=$(cd "$(dirname "$0")" && pwd)
weights="$build/bench-weights"
python=/usr/bin/python3
. "$here/compare.sh"

machine_line "$threads"
"$python" "$here/dinov2_reference.py" check
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
# Interleaved per size, so that a change in machine load hits both sides alike.
for size in s b; do
  "$build/bench/bench_dinov2" --sizes "$size" --image 224 --batch "$batch" --iters "$iters" --warmup 1 \
    --threads "$threads" --weights-dir "$weights"
  "$python" "$here/dinov2_reference.py" bench --weights "$weights/dinov2_vit${size}14.safetensors" --image 224 \
    --batch "$batch" --iters "$iters" --warmup 1 --threads "$threads"
done
