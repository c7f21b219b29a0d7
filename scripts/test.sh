#!/usr/bin/env bash
# The README's test command: set-up (packages + build), then the whole test suite through ctest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh" "$@"
build_dir="${REPA_BUILD_DIR:-$here/build}"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
cd "$build_dir"
ctest --output-on-failure --timeout 900 -j "$(nproc)"
