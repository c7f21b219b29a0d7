#!/bin/sh
# One SiT training step (forward + backward + AdamW), ms/step: the LibTorch model (bench_sit) beside the
# PyTorch-eager reference (sit_reference.py on Debian's torch), same model, same step, same threads. The two
# alternate for ROUNDS rounds (default 2) so that a change in machine load hits both alike; the ratio uses
# each side's best round. The reference first checks itself against the sit_forward fixtures.
#
#   bench/reference/run_sit_bench.sh BUILD_DIR [THREADS] [options for both, e.g. --depth 4 --width 256]
set -eu
build=${1:?usage: run_sit_bench.sh BUILD_DIR [THREADS] [OPTIONS...]}
threads=${2:-$(nproc)}
shift $(( $# >= 2 ? 2 : 1 ))
rounds=${ROUNDS:-2}
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3

echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; threads $threads; load $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$here/sit_reference.py" check
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
median() { echo "$1" | sed 's/.*median \([0-9.]*\) ms.*/\1/'; }
best_ours=""; best_theirs=""
i=0
while [ "$i" -lt "$rounds" ]; do
  ours=$("$build/bench/bench_sit" --threads "$threads" "$@"); echo "$ours"
  theirs=$("$python" "$here/sit_reference.py" bench --threads "$threads" "$@"); echo "$theirs"
  best_ours=$(awk -v a="$(median "$ours")" -v b="$best_ours" 'BEGIN { print (b == "" || a < b) ? a : b }')
  best_theirs=$(awk -v a="$(median "$theirs")" -v b="$best_theirs" 'BEGIN { print (b == "" || a < b) ? a : b }')
  i=$((i + 1))
done
awk -v a="$best_ours" -v b="$best_theirs" \
  'BEGIN { printf "best median: libtorch %.1f ms, pytorch-eager %.1f ms; ratio libtorch / pytorch-eager %.2f (below 1: LibTorch faster)\n", a, b, a / b }'
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
