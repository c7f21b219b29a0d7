#!/usr/bin/env bash
# The README's first command: set-up (packages + build), then the studio on its built-in demo: the window
# with the demo preset loaded and started. Without a display it runs the same demo headless instead, in
# the terminal with a progress bar, writing runs/demo/ (the studio can open that folder later:
# File > Open Run Directory).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
build_dir="${REPA_BUILD_DIR:-$here/build}"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec "$build_dir/app/repa-studio" --preset demo --start "$@"
fi
echo "studio.sh: no display: running the demo headless (repa-train run --preset demo)" >&2
exec "$build_dir/app/repa-train" run --preset demo "$@"
