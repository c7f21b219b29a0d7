#!/usr/bin/env bash
# The README's test command: set-up (packages + build), then the whole test suite through ctest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh" "$@"
build_dir="${REPA_BUILD_DIR:-$here/build}"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
# ctest runs one test per core; each test (and each worker it starts) then uses one LibTorch thread, so
# the machine is never oversubscribed (OpenMP threads spinning against each other slow tests by 10-100x).
# nproc reports OMP_NUM_THREADS instead of the cores when it is set, so the core count is read without it.
jobs="${REPA_TEST_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}"
export REPA_NUM_THREADS="${REPA_NUM_THREADS:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "$build_dir"
# The longest test takes about 70 s on 2 cores; a test that hangs fails after 300 s instead of holding the run.
ctest --output-on-failure --timeout "${REPA_TEST_TIMEOUT:-300}" -j "$jobs"
