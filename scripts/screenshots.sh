#!/usr/bin/env bash
# Regenerates docs/screenshots/main_window.png (1600x1000), main_window_1280x800.png and
# settings_help_1280x800.png: the window during a short demo run with the real worker, rendered offscreen
# on a 1280x800 screen. PNGs over 300 KB are reduced to 256 colours (ImageMagick) to keep the repository small.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${REPA_BUILD_DIR:-$here/build}"
out="$here/docs/screenshots"
cmake --build "$build_dir" --target ui_screenshots
QT_QPA_PLATFORM="offscreen:configfile=$here/tests/ui/screen_1280x800.json" \
  XDG_CONFIG_HOME="$(mktemp -d)" "$build_dir/tests/ui/ui_screenshots" "$out"
for png in "$out"/main_window.png "$out"/main_window_1280x800.png "$out"/settings_help_1280x800.png; do
  if [ "$(stat -c %s "$png")" -gt 300000 ] && command -v convert >/dev/null; then
    convert "$png" -colors 256 "PNG8:$png"
  fi
  echo "$png: $(stat -c %s "$png") bytes"
done
