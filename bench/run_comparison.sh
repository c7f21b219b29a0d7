#!/bin/sh
# Training-step times of `repa-train bench` (LibTorch) beside bench/reference/steps_reference.py (PyTorch
# eager on Debian's torch, whose modules are checked against the conformance fixtures first): same steps,
# same sizes, same thread count. For each round and each case the two sides run one after the other (the
# order flips every round) so that a change in machine load hits both alike; the summary takes, per side and
# case, the median over rounds of each run's median step time.
#
#   bench/run_comparison.sh BUILD_DIR [THREADS] [options for both sides, e.g. --batch 8 --depth 4]
#   environment: ROUNDS (3), ITERS (10), WARMUP (3), CASES (sit,sit_repa,sit_repa_teacher,unet_urepa,dinov2),
#                REFERENCE_MALLOC=tuned gives the Python side the heap settings repa-train makes for itself
#                (MALLOC_MMAP_THRESHOLD_ 32 MB, MALLOC_TRIM_THRESHOLD_ 1 GB, MALLOC_TOP_PAD_ 64 MB)
set -eu
build=${1:?usage: run_comparison.sh BUILD_DIR [THREADS] [OPTIONS...]}
threads=${2:-$(nproc)}
shift $(( $# >= 2 ? 2 : 1 ))
rounds=${ROUNDS:-3}
iters=${ITERS:-10}
warmup=${WARMUP:-3}
cases=${CASES:-sit,sit_repa,sit_repa_teacher,unet_urepa,dinov2}
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
exe="$build/app/repa-train"
[ -x "$exe" ] || { echo "run_comparison.sh: no $exe (build the repa-train target)" >&2; exit 2; }

echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; threads $threads; load $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$here/reference/steps_reference.py" check > /dev/null || {
  echo "run_comparison.sh: the PyTorch reference differs from the fixtures; not timing it" >&2; exit 1; }
echo "# reference modules match the conformance fixtures"
reference_env=
if [ "${REFERENCE_MALLOC:-}" = tuned ]; then
  reference_env="MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864"
  echo "# the PyTorch side runs with $reference_env"
fi
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ours() { c=$1; shift; "$exe" bench --json --case "$c" --threads "$threads" --iters "$iters" --warmup "$warmup" "$@" >> "$out/libtorch.jsonl"; }
theirs() { env $reference_env "$python" "$here/reference/steps_reference.py" bench --case "$1" --threads "$threads" --iters "$iters" \
             --warmup "$warmup" >> "$out/pytorch.jsonl"; }
round=0
while [ "$round" -lt "$rounds" ]; do
  for case in $(echo "$cases" | tr ',' ' '); do
    if [ $((round % 2)) -eq 0 ]; then ours "$case" "$@"; theirs "$case"; else theirs "$case"; ours "$case" "$@"; fi
    echo "# round $((round + 1))/$rounds $case done, load $(cut -d' ' -f1-3 /proc/loadavg)"
  done
  round=$((round + 1))
done
"$python" - "$out/libtorch.jsonl" "$out/pytorch.jsonl" <<'PY'
import json, statistics, sys
def collect(path):
    runs = {}
    for line in open(path):
        for case, r in json.loads(line)["results"].items():
            runs.setdefault(case, []).append(r["median_ms"])
    return {case: statistics.median(v) for case, v in runs.items()}, runs
ours, ours_all = collect(sys.argv[1])
theirs, theirs_all = collect(sys.argv[2])
print("%-18s %12s %12s %10s %10s   per-round medians (libtorch | pytorch)" % (
    "case", "libtorch ms", "pytorch ms", "speed-up", "fastest"))
for case in ours:
    fastest = min(theirs_all[case]) / min(ours_all[case])
    print("%-18s %12.1f %12.1f %9.2fx %9.2fx   %s | %s" % (case, ours[case], theirs[case], theirs[case] / ours[case],
          fastest, " ".join("%.0f" % v for v in ours_all[case]), " ".join("%.0f" % v for v in theirs_all[case])))
for side, m in (("libtorch", ours), ("pytorch", theirs)):
    if "sit" in m and "sit_repa" in m:
        print("%-8s REPA (cached teacher) / vanilla SiT step: %.3f" % (side, m["sit_repa"] / m["sit"]))
    if "sit_repa" in m and "sit_repa_teacher" in m:
        print("%-8s teacher every step / cached teacher     : %.2f" % (side, m["sit_repa_teacher"] / m["sit_repa"]))
print("speed-up = pytorch-eager ms / libtorch ms (above 1: LibTorch faster); fastest = the same for each side's"
      " fastest round")
PY
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
