#!/bin/sh
# Compiles (syntax only) every LibTorch source of core/ and app/ against LibTorch 2.x headers, taken from
# Debian's libtorch-dev of a newer release, so API changes between 1.13 and 2.x show up without a 2.x build.
# Downloads one .deb (about 2.5 MB) from Debian's archive into $REPA_TORCH2_DIR (default .cache/torch2);
# not part of the tests. Needs a configured build folder for the generated version header.
#
#   scripts/check_torch2_headers.sh [BUILD_DIR]      environment: REPA_TORCH2_DEB (the .deb's pool path)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
deb=${REPA_TORCH2_DEB:-pool/main/p/pytorch/libtorch-dev_2.6.0+dfsg-7_amd64.deb}
dir=${REPA_TORCH2_DIR:-.cache/torch2}
[ -f "$build/core/generated/core/base/version.h" ] || { echo "check_torch2_headers: configure $build first" >&2; exit 2; }
if [ ! -d "$dir/root/usr/include/torch" ]; then
  mkdir -p "$dir"
  curl -fsS --max-time 300 -o "$dir/libtorch-dev.deb" "http://deb.debian.org/debian/$deb"
  dpkg -x "$dir/libtorch-dev.deb" "$dir/root"
fi
inc="-I$dir/root/usr/include -I$dir/root/usr/include/torch/csrc/api/include -I. -I$build/core/generated"
version_h="$dir/root/usr/include/torch/csrc/api/include/torch/version.h"
echo "LibTorch $(sed -n 's/^#define TORCH_VERSION_MAJOR //p' "$version_h").$(sed -n 's/^#define TORCH_VERSION_MINOR //p' "$version_h") headers"
files=$(ls core/*/*.cpp app/*.cpp | grep -v -e repa_studio_main -e presets_data)
export inc dir
# One compiler per core; a failing file prints its first errors and is named at the end.
echo "$files" | xargs -P "$(nproc)" -I{} sh -c \
  'log="$dir/$(echo {} | tr / _).log"; g++ -std=c++17 -fsyntax-only -w $inc {} > "$log" 2>&1 || { echo "FAIL {}"; grep -m 5 error "$log"; }' \
  | tee "$dir/result.txt"
if grep -q '^FAIL' "$dir/result.txt"; then exit 1; fi
echo "check_torch2_headers: all $(echo "$files" | wc -l) sources compile against these headers"
