#!/bin/sh
# The runner on $REPA_CONFORMANCE_DIR naming one directory that mixes the kinds of fixtures/conformance and
# fixtures/text2image: every fixture gets a line, the first round's kinds PASS, the new ones are PENDING (or
# PASS once implemented), and the summary counts them all.
#   check_mixed_dir.sh RUNNER FIXTURES_DIR
set -eu
runner=$1
fixtures=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for f in "$fixtures"/conformance/*.safetensors "$fixtures"/text2image/*.safetensors; do
  ln -s "$f" "$dir/$(basename "$f")"
done
total=$(ls "$dir" | wc -l)
REPA_CONFORMANCE_DIR="$dir" "$runner" > "$dir.log" || { cat "$dir.log"; echo "runner failed"; exit 1; }
cat "$dir.log"
lines=$(grep -c -E ' (PASS$|PENDING)' "$dir.log")
first=$(ls "$fixtures"/conformance/*.safetensors | wc -l)
passes=$(grep -c ' PASS$' "$dir.log")
summary=$(grep -c "^conformance: $total fixtures in $dir: " "$dir.log" || true)
rm -f "$dir.log"
[ "$lines" -eq "$total" ] || { echo "expected $total fixture lines, got $lines"; exit 1; }
[ "$passes" -ge "$first" ] || { echo "expected at least $first PASS lines, got $passes"; exit 1; }
[ "$summary" -eq 1 ] || { echo "the summary does not count $total fixtures"; exit 1; }
echo "mixed directory: $total fixtures, $passes PASS"
