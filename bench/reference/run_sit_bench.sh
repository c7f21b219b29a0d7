#!/bin/sh
# One SiT training step (forward + backward + AdamW), ms/step: the LibTorch model (bench_sit) beside the
# PyTorch-eager reference (sit_reference.py on Debian's torch), same model, same step, same threads, one
# after the other; prints the ratio. The reference first checks itself against the sit_forward fixtures.
#
#   bench/reference/run_sit_bench.sh BUILD_DIR [THREADS] [extra options for both, e.g. --depth 4 --width 256]
set -eu
build=${1:?usage: run_sit_bench.sh BUILD_DIR [THREADS] [OPTIONS...]}
threads=${2:-$(nproc)}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3

echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; threads $threads"
"$python" "$here/sit_reference.py" check
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
ours=$("$build/bench/bench_sit" --threads "$threads" "$@")
echo "$ours"
theirs=$("$python" "$here/sit_reference.py" bench --threads "$threads" "$@")
echo "$theirs"
median() { echo "$1" | sed 's/.*median \([0-9.]*\) ms.*/\1/'; }
awk -v a="$(median "$ours")" -v b="$(median "$theirs")" \
  'BEGIN { printf "ratio libtorch / pytorch-eager: %.2f (below 1: LibTorch faster)\n", a / b }'
