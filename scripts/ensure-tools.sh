#!/bin/sh
# Test tools from Debian's packages: chromium (browser tests through Playwright; never a
# downloaded browser) and docker-compose (validates docker-compose.yml without an engine).
set -eu
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
need=""
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v docker-compose >/dev/null 2>&1 || need="$need docker-compose"
# nginx: the suite runs deploy/nginx.conf in front of two daphne processes.
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need="$need nginx-light"
if [ -n "$need" ]; then
  echo "tools: installing$need (apt)"
  $SUDO apt-get install -y -q $need >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q $need >/dev/null; }
fi
PATH="$PATH:/usr/sbin"
for tool in chromium docker-compose nginx; do
  command -v "$tool" >/dev/null 2>&1 || { echo "tools: $tool could not be installed" >&2; exit 1; }
done
echo "tools: $(chromium --version 2>/dev/null | head -n 1); $(docker-compose version --short 2>/dev/null)"
