#!/bin/sh
# Print the path of a Python >= 3.12 that really runs, or explain what is missing.
ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }
for p in python3.13 python3.12 python3; do
  if command -v "$p" >/dev/null 2>&1 && ok "$p"; then command -v "$p"; exit 0; fi
done
root="${PYENV_ROOT:-$HOME/.pyenv}"
for p in "$root"/versions/3.13*/bin/python3 "$root"/versions/3.12*/bin/python3; do
  if [ -x "$p" ] && ok "$p"; then echo "$p"; exit 0; fi
done
echo "Chatsite needs Python >= 3.12: install python3.12 or python3.13 (apt, pyenv or python.org) and run make again." >&2
exit 1
