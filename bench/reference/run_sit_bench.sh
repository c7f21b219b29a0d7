#!/bin/sh
# One SiT training step (forward + backward + AdamW), ms/step: the LibTorch model (bench_sit) beside the
# PyTorch-eager reference (sit_reference.py on Debian's torch), same model, same step, same threads. The two
# alternate for ROUNDS rounds (default 2; the order flips every round) so that a change in machine load hits both alike; the ratio uses
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
. "$here/compare.sh"

machine_line "$threads"
"$python" "$here/sit_reference.py" check
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
ours() { "$build/bench/bench_sit" --threads "$threads" "$@"; }
theirs() { "$python" "$here/sit_reference.py" bench --threads "$threads" "$@"; }
alternate "$rounds" "$@"
ratio_line "best median" "$(lowest "$all_ours")" "$(lowest "$all_theirs")"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
