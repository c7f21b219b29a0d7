#!/usr/bin/env bash
# The README's test command: set-up (packages + build), then the whole test suite through ctest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh" "$@"
build_dir="${REPA_BUILD_DIR:-$here/build}"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
# ctest runs one test per core; each test (and each worker it starts) then uses one LibTorch thread, so
# the machine is never oversubscribed (OpenMP threads spinning against each other slow tests by 10-100x).
export REPA_NUM_THREADS="${REPA_NUM_THREADS:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "$build_dir"
ctest --output-on-failure --timeout 1200 -j "$(nproc)"
