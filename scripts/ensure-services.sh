#!/bin/sh
# Make sure Postgres and Redis answer on loopback; start them when installed but stopped.
set -u
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "services: Postgres is up on 127.0.0.1:5432"
else
  ver=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
  if [ -n "$ver" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services: starting Postgres $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  fi
  for _ in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 || {
    echo "services: Postgres is not running on 127.0.0.1:5432 and could not be started." >&2
    echo "  Install it (apt-get install -y postgresql) or set TEST_DATABASE_URL." >&2
    exit 1; }
  echo "services: Postgres started"
fi
if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: Redis is up on 127.0.0.1:6379"
else
  command -v redis-server >/dev/null 2>&1 || {
    echo "services: Redis is not running and not installed (apt-get install -y redis-server)." >&2
    exit 1; }
  echo "services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in 1 2 3 4 5; do redis-cli ping >/dev/null 2>&1 && break; sleep 1; done
  redis-cli ping >/dev/null 2>&1 || { echo "services: Redis failed to start" >&2; exit 1; }
fi
