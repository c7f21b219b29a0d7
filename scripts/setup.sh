#!/usr/bin/env bash
# Idempotent set-up: installs the Debian packages the studio needs (with sudo when not root), then
# configures and builds into build/ (or $REPA_BUILD_DIR). Options: --no-gui (core + repa-train only),
# --no-build (packages only). Safe to run again: installed packages and an up-to-date build are skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${REPA_BUILD_DIR:-$here/build}"
gui=ON
build=1
for arg in "$@"; do
  case "$arg" in
    --no-gui) gui=OFF ;;
    --no-build) build=0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-openmp libgloo-dev
  nlohmann-json3-dev libspdlog-dev libstb-dev doctest-dev libcurl4-openssl-dev
  python3-torch python3-numpy
)
if [ "$gui" = ON ]; then
  packages+=(qt6-base-dev libqcustomplot-dev libgl-dev xvfb xauth)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch's CPU kernels use OpenBLAS with OpenMP; the reference BLAS is several times slower.
if [ -x /usr/sbin/update-alternatives ] && [ -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 ]; then
  current="$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}')"
  if [ "$current" != /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" update-alternatives --set libblas.so.3-x86_64-linux-gnu \
      /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 >/dev/null
    "${sudo_cmd[@]}" update-alternatives --set liblapack.so.3-x86_64-linux-gnu \
      /usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack.so.3 >/dev/null 2>&1 || true
  fi
fi

[ "$build" = 1 ] || exit 0

generator=()
command -v ninja >/dev/null && [ ! -f "$build_dir/Makefile" ] && generator=(-G Ninja)
cmake -S "$here" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DREPA_BUILD_GUI="$gui" >/dev/null
cmake --build "$build_dir" --parallel "$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
