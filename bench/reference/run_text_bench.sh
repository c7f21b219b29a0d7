#!/bin/sh
# Text-encoder forward throughput, native (bench_text) beside PyTorch eager (text_reference.py, checked
# against the clip_text_forward / t5_encoder_forward fixtures first): same models, sizes and thread count;
# each round runs both sides one after the other, the order flipping every round, so machine load hits both
# alike. Prints every run as a JSON line and, per model and side, the median tokens/s over rounds.
#
#   bench/reference/run_text_bench.sh BUILD_DIR [THREADS]      (from the repository root)
#   environment: ROUNDS (3), ITERS (3), WARMUP (1), CLIP_BATCH (4), T5_BATCH (1), T5_TOKENS (128)
set -eu
build=${1:?usage: run_text_bench.sh BUILD_DIR [THREADS]}
threads=${2:-1}
rounds=${ROUNDS:-3}
iters=${ITERS:-3}
warmup=${WARMUP:-1}
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
. "$here/compare.sh"
exe="$build/bench/bench_text"
[ -x "$exe" ] || { echo "run_text_bench.sh: no $exe (build the bench_text target)" >&2; exit 2; }
machine_line "$threads"
"$python" "$here/text_reference.py" check > /dev/null || {
  echo "run_text_bench.sh: the PyTorch reference differs from the fixtures; not timing it" >&2; exit 1; }
echo "# reference encoders match the clip_text_forward and t5_encoder_forward fixtures"
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
case_args() {
  if [ "$1" = clip_l ]; then echo "--batch ${CLIP_BATCH:-4} --tokens 77"; else echo "--batch ${T5_BATCH:-1} --tokens ${T5_TOKENS:-128}"; fi
}
ours() { "$exe" --model "$1" $(case_args "$1") --iters "$iters" --warmup "$warmup" --threads "$threads" | tee -a "$out"; }
theirs() { "$python" "$here/text_reference.py" bench --model "$1" $(case_args "$1") --iters "$iters" --warmup "$warmup" \
             --threads "$threads" | tee -a "$out"; }
round=0
while [ "$round" -lt "$rounds" ]; do
  for model in clip_l t5_xxl_2; do
    if [ $((round % 2)) -eq 0 ]; then ours "$model"; theirs "$model"; else theirs "$model"; ours "$model"; fi
  done
  round=$((round + 1))
done
"$python" - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
for model in ("clip_l", "t5_xxl_2"):
    sides = {}
    for r in runs:
        if r["model"] == model:
            sides.setdefault(r["side"], []).append(r["tokens_per_sec"])
    ours, theirs = statistics.median(sides["libtorch"]), statistics.median(sides["pytorch-eager"])
    first = next(r for r in runs if r["model"] == model)
    print(f"{model:9s} {first['parameters'] / 1e6:6.1f} M params, batch {first['batch']} x {first['tokens']} tokens: "
          f"libtorch {ours:8.1f} tokens/s, pytorch-eager {theirs:8.1f} tokens/s, ratio {ours / theirs:.2f}")
PY
