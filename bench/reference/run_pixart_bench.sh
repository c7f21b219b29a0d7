#!/bin/sh
# One PixArt-shaped training step (epsilon on linear betas, masked T5-shaped captions, learned-sigma output, block
# tap, AdamW), ms/step: the LibTorch model (bench_pixart) beside the PyTorch-eager reference (pixart_reference.py on
# Debian's torch), same model, same step, same threads. The two alternate for ROUNDS rounds (default 2; the order
# flips every round) so that a change in machine load hits both alike; the ratio uses each side's best round. The
# reference first checks itself against the pixart_transformer_forward fixtures.
#
#   bench/reference/run_pixart_bench.sh BUILD_DIR [THREADS] [options for both, e.g. --depth 2 --heads 16 --head-dim 72]
set -eu
build=${1:?usage: run_pixart_bench.sh BUILD_DIR [THREADS] [OPTIONS...]}
threads=${2:-$(nproc)}
shift $(( $# >= 2 ? 2 : 1 ))
rounds=${ROUNDS:-2}
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
[ -x "$build/bench/bench_pixart" ] || { echo "run_pixart_bench.sh: no $build/bench/bench_pixart (build the bench_pixart target)" >&2; exit 2; }

echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; threads $threads; load $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$here/pixart_reference.py" check
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
median() { echo "$1" | sed 's/.*median \([0-9.]*\) ms.*/\1/'; }
ours() { "$build/bench/bench_pixart" --threads "$threads" "$@"; }
theirs() { "$python" "$here/pixart_reference.py" bench --threads "$threads" "$@"; }
best_ours=""; best_theirs=""
i=0
while [ "$i" -lt "$rounds" ]; do
  if [ $((i % 2)) -eq 0 ]; then a=$(ours "$@"); b=$(theirs "$@"); else b=$(theirs "$@"); a=$(ours "$@"); fi
  echo "$a"; echo "$b"
  best_ours=$(awk -v a="$(median "$a")" -v b="$best_ours" 'BEGIN { print (b == "" || a < b) ? a : b }')
  best_theirs=$(awk -v a="$(median "$b")" -v b="$best_theirs" 'BEGIN { print (b == "" || a < b) ? a : b }')
  i=$((i + 1))
done
awk -v a="$best_ours" -v b="$best_theirs" \
  'BEGIN { printf "best median: libtorch %.1f ms, pytorch-eager %.1f ms; ratio libtorch / pytorch-eager %.2f (below 1: LibTorch faster)\n", a, b, a / b }'
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
