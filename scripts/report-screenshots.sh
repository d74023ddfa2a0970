#!/usr/bin/env bash
# Takes screenshots of a report.html with headless Chromium: the top of the page (metrics,
# safety table, first charts) and the test-image section.
#
# Usage: bash scripts/report-screenshots.sh REPORT_DIR OUT_DIR [PREFIX]
# Writes OUT_DIR/PREFIX-top.png and OUT_DIR/PREFIX-images.png (PREFIX defaults to report).
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 REPORT_DIR OUT_DIR [PREFIX]" >&2
    exit 2
fi
report="$(cd "$1" && pwd)/report.html"
out="$2"
prefix="${3:-report}"
if [ ! -f "$report" ]; then
    echo "error: $report not found; pass the --out folder of sieve run or sieve eval" >&2
    exit 2
fi
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
    echo "error: chromium not found; install it (Debian: apt-get install chromium)" >&2
    exit 2
fi
mkdir -p "$out"

shoot() {
    # $1: address, $2: output file, $3: window size WIDTHxHEIGHT
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --virtual-time-budget=20000 --window-size="${3/x/,}" \
        --screenshot="$2" "$1" 2>/dev/null
    echo "wrote $2"
}

shoot "file://$report" "$out/$prefix-top.png" 1280x1500
# The #only=images address hides every section before the test images (see report.html's script).
shoot "file://$report#only=images" "$out/$prefix-images.png" 1280x1100
