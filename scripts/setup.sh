#!/usr/bin/env bash
# Set up everything the project needs, idempotently:
#   - .venv with the package (editable) and its dev tools
#   - the real copilot and claude CLIs from npm into ./node_modules, pinned by
#     package-lock.json, when they are not on PATH (always with --with-clis)
set -euo pipefail
cd "$(dirname "$0")/.."

with_clis=0
[ "${1:-}" = "--with-clis" ] && with_clis=1

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: Python 3.11 or newer is needed (found: $("$python" --version 2>&1))" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

need_npm=$with_clis
command -v copilot >/dev/null 2>&1 || need_npm=1
command -v claude >/dev/null 2>&1 || need_npm=1
if [ "$need_npm" = 1 ]; then
  lock_stamp=node_modules/.installed-$(sha1sum package-lock.json | cut -c1-12)
  if [ ! -f "$lock_stamp" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "setup: npm is needed to install the copilot and claude CLIs (install Node.js 20+)" >&2
      exit 1
    fi
    echo "setup: installing the copilot and claude CLIs into ./node_modules"
    npm ci --no-audit --no-fund --loglevel=error
    rm -f node_modules/.installed-*
    touch "$lock_stamp"
  fi
fi
