#!/usr/bin/env bash
# Render a report.html in headless Chromium and save a screenshot, to check the page by eye (tables, plots,
# trace viewer). Needs the Debian package `chromium` (apt-get install -y chromium).
#   usage: scripts/screenshot_report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]
set -euo pipefail
html="${1:?usage: $0 REPORT.html [OUT.png] [WIDTHxHEIGHT]}"
out="${2:-${html%.html}.png}"
size="${3:-1280x2000}"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]]; then
  echo "error: chromium not found (Debian/Ubuntu: apt-get install -y chromium)" >&2
  exit 2
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
abs="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
  --hide-scrollbars --run-all-compositor-stages-before-draw --virtual-time-budget=10000 --screenshot="$out_abs" --window-size="${size/x/,}" \
  "file://$abs" >/dev/null 2>&1 || true
if [[ ! -s "$out_abs" ]]; then
  echo "error: chromium wrote no screenshot for $abs" >&2
  exit 1
fi
echo "$out_abs"
