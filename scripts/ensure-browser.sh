#!/bin/sh
# Browser tests use Debian's Chromium through Playwright; never a downloaded browser.
set -eu
if command -v chromium >/dev/null 2>&1; then
  echo "browser: $(chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
echo "browser: installing Debian's chromium (apt)"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || {
  $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
command -v chromium >/dev/null 2>&1 || { echo "browser: chromium could not be installed" >&2; exit 1; }
echo "browser: $(chromium --version | head -n 1)"
