#!/usr/bin/env bash
# Set up what the project needs, idempotently (each step runs again only when its
# inputs change):
#   scripts/setup.sh              .venv with the package (editable) and its runtime
#                                 dependencies: what serve.sh and daemon.sh need
#   scripts/setup.sh --dev        also the dev tools (pytest, ruff, mypy, hadolint, the
#                                 client libraries the tests drive) and the JavaScript
#                                 clients in tests/clients/node_modules: what test.sh needs
#   ... --with-clis               the real copilot and claude CLIs from npm into
#                                 ./node_modules, pinned by package-lock.json (without it:
#                                 only when they are not on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
with_clis=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --with-clis) with_clis=1 ;;
    *)
      echo "usage: $0 [--dev] [--with-clis]" >&2
      exit 2
      ;;
  esac
done

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: Python 3.11 or newer is needed (found: $("$python" --version 2>&1))" >&2
  exit 1
fi

need_npm() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: npm is needed to install $1 (install Node.js 20+)" >&2
    exit 1
  fi
}

# npm ci into <dir>/node_modules once per package-lock.json.
npm_install() {
  local dir=$1 what=$2 stamp
  stamp=$dir/node_modules/.installed-$(sha1sum "$dir/package-lock.json" | cut -c1-12)
  [ -f "$stamp" ] && return 0
  need_npm "$what"
  echo "setup: installing $what into $dir/node_modules"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  rm -f "$dir"/node_modules/.installed-*
  touch "$stamp"
}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
# One stamp per pyproject.toml: a dev install holds the runtime one, so its stamp
# satisfies both; a runtime install does not satisfy --dev.
hash=$(sha1sum pyproject.toml | cut -c1-12)
dev_stamp=.venv/.installed-dev-$hash
runtime_stamp=.venv/.installed-runtime-$hash
if [ "$dev" = 1 ]; then
  kind=dev extras='.[dev]' stamp=$dev_stamp
else
  kind=runtime extras='.' stamp=$runtime_stamp
fi
if [ ! -f "$dev_stamp" ] && [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages ($kind)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e "$extras"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

if [ "$with_clis" = 1 ] || ! command -v copilot >/dev/null 2>&1 || ! command -v claude >/dev/null 2>&1; then
  npm_install . "the copilot and claude CLIs"
fi
if [ "$dev" = 1 ]; then
  npm_install tests/clients "the JavaScript clients the tests drive"
fi
