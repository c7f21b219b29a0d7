#!/bin/sh
# SD-shaped and SDXL-shaped UNet training steps, full fine-tuning and LoRA (rank 16 on to_q/to_k/to_v/to_out.0):
# the LibTorch model (bench_sd_unet) beside the PyTorch-eager reference (sd_unet_reference.py on Debian's torch),
# same configs, same step, same threads. For every case the two alternate for ROUNDS rounds (default 3; the order
# flips every round) so that a change in machine load hits both alike; the ratio uses the median of each side's
# per-round medians. The reference first checks itself against the unet2d_forward fixtures.
#
#   bench/reference/run_unet_bench.sh BUILD_DIR [THREADS] [options for both, e.g. --size 32 --iters 2]
#   CASES="sd:lora sdxl:lora" ROUNDS=5 bench/reference/run_unet_bench.sh build 2
set -eu
build=${1:?usage: run_unet_bench.sh BUILD_DIR [THREADS] [OPTIONS...]}
threads=${2:-$(nproc)}
shift $(( $# >= 2 ? 2 : 1 ))
rounds=${ROUNDS:-3}
cases=${CASES:-sd:full sd:lora sdxl:full sdxl:lora}
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
. "$here/compare.sh"
[ -x "$build/bench/bench_sd_unet" ] || { echo "run_unet_bench.sh: no $build/bench/bench_sd_unet (build the bench_sd_unet target)" >&2; exit 2; }

machine_line "$threads"
"$python" "$here/sd_unet_reference.py" check
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
summary=""
for c in $cases; do
  name=${c%%:*}; mode=${c#*:}
  ours() { "$build/bench/bench_sd_unet" --case "$name" --mode "$mode" --threads "$threads" "$@"; }
  theirs() { "$python" "$here/sd_unet_reference.py" bench --case "$name" --mode "$mode" --threads "$threads" "$@"; }
  alternate "$rounds" "$@"
  line=$(awk -v n="$name $mode" -v a="$(middle "$all_ours")" -v b="$(middle "$all_theirs")" \
    'BEGIN { printf "%-10s libtorch %9.1f ms, pytorch-eager %9.1f ms, ratio %.2f", n, a, b, a / b }')
  echo "$line (load $(cut -d' ' -f1-3 /proc/loadavg))"
  summary="$summary$line
"
done
echo "# median of the per-round medians; ratio libtorch / pytorch-eager (below 1: LibTorch faster)"
printf '%s' "$summary"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
