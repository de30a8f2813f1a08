#!/usr/bin/env bash
# Installs Debian's chromium so that the headless-browser test of the Gradio demo
# (tests/test_demo/test_gradio_denoise.py) runs instead of skipping. Best effort: when
# Chromium cannot be installed here it prints one line and exits 0, and that test skips.
set -u
CHROMIUM=${EBTVISION_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
skip() {
    echo "install_chromium: $1; the headless-browser test will be skipped"
    exit 0
}
command -v apt-get >/dev/null 2>&1 || skip "no apt-get"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    skip "not root and no password-less sudo"
fi
LOG=$(mktemp "${TMPDIR:-/tmp}/install_chromium.XXXXXX.log")
start=$(date +%s)
# The time limit keeps an unreachable mirror from eating CI's time budget.
if ! timeout 900 "${SUDO[@]}" apt-get update -qq >"$LOG" 2>&1; then
    skip "apt-get update failed (see $LOG)"
fi
# Recommends (fonts, the sandbox helper) are left out: the test runs --no-sandbox and
# reads the page's text, not pixels of glyphs.
if ! timeout 900 "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends chromium >>"$LOG" 2>&1; then
    skip "apt-get install chromium failed (see $LOG)"
fi
[ -x "$CHROMIUM" ] || skip "chromium installed but $CHROMIUM is missing"
echo "install_chromium: $("$CHROMIUM" --version 2>/dev/null | head -n 1) in $(($(date +%s) - start)) s"
rm -f "$LOG"
