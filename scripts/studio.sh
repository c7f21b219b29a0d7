#!/usr/bin/env bash
# The README's first command: set-up (packages + build), then the studio on its built-in default. Without
# a display it starts the window under a virtual X server (xvfb-run) so the studio still runs headless.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
build_dir="${REPA_BUILD_DIR:-$here/build}"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec "$build_dir/app/repa-studio" "$@"
fi
echo "studio.sh: no display; running the studio headless (QT_QPA_PLATFORM=offscreen)" >&2
QT_QPA_PLATFORM=offscreen exec "$build_dir/app/repa-studio" "$@"
