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
. "$here/compare.sh"
[ -x "$build/bench/bench_pixart" ] || { echo "run_pixart_bench.sh: no $build/bench/bench_pixart (build the bench_pixart target)" >&2; exit 2; }

machine_line "$threads"
"$python" "$here/pixart_reference.py" check
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
ours() { "$build/bench/bench_pixart" --threads "$threads" "$@"; }
theirs() { "$python" "$here/pixart_reference.py" bench --threads "$threads" "$@"; }
alternate "$rounds" "$@"
ratio_line "best median" "$(lowest "$all_ours")" "$(lowest "$all_theirs")"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
