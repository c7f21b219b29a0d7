#!/bin/sh
# One SD3- and one Flux-shaped training step (flow matching: σ = sigmoid(N(0, 1)), target noise − x0, REPA tap kept,
# AdamW) at the real widths with reduced depth, ms/step: the LibTorch models (bench_flow_dit) beside the PyTorch-eager
# reference (flow_dit_reference.py on Debian's torch), same model, same step, same threads (torch's and
# OMP_NUM_THREADS). For each case the two alternate for ROUNDS rounds (default 3; the order flips every round) so that
# a change in machine load hits both alike; each side's median over the rounds' medians gives the ratio. The
# reference first checks itself against the sd3_transformer_forward and flux_transformer_forward fixtures.
# Our side runs as repa-train trains: the trainer's FusedAdamW and the kept heap; OPTIMIZER=torch (LibTorch's AdamW,
# PyTorch's operators) with REPA_MALLOC_DEFAULT=1 (glibc's heap defaults) compares like for like.
#
#   bench/reference/run_flow_dit_bench.sh BUILD_DIR [THREADS] [CASES] [options for both, e.g. --iters 3]
#
# CASES is a comma-separated list of sd3, sd35 (SD3.5: RMS qk-norm, dual attention in the first block) and flux;
# default "sd3,flux". Sizes: sd3/sd35 2 joint blocks of 1536, 32x32 latents (256 px), 154 text tokens (77 CLIP + 77
# T5); flux 1 double + 1 single block of 3072, 16x16 packed tokens (256 px), 512 text tokens (dev); batch 1.
set -eu
build=${1:?usage: run_flow_dit_bench.sh BUILD_DIR [THREADS] [CASES] [OPTIONS...]}
threads=${2:-$(nproc)}
cases=${3:-sd3,flux}
shift $(( $# >= 3 ? 3 : $# ))
rounds=${ROUNDS:-3}
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
. "$here/compare.sh"
[ -x "$build/bench/bench_flow_dit" ] || { echo "run_flow_dit_bench.sh: no $build/bench/bench_flow_dit (build the bench_flow_dit target)" >&2; exit 2; }

machine_line "$threads"
"$python" "$here/flow_dit_reference.py" check
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
for c in $(echo "$cases" | tr ',' ' '); do
  case "$c" in
    sd3) args="--case sd3" ;;
    sd35) args="--case sd3 --qk-norm rms_norm --dual-blocks 1" ;;
    flux) args="--case flux" ;;
    *) echo "run_flow_dit_bench.sh: unknown case '$c' (sd3, sd35, flux)" >&2; exit 2 ;;
  esac
  ours() { "$build/bench/bench_flow_dit" --threads "$threads" --optimizer "${OPTIMIZER:-fused}" $args "$@"; }
  theirs() { "$python" "$here/flow_dit_reference.py" bench --threads "$threads" $args "$@"; }
  alternate "$rounds" "$@"
  ratio_line "$c: median of round medians" "$(middle "$all_ours")" "$(middle "$all_theirs")"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
