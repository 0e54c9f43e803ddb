#!/usr/bin/env bash
# Set up (the dev tools, and the real CLIs from npm) and run the whole check: lint, types,
# tests.
# Extra arguments go to pytest, e.g. ./scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --dev --with-clis
export PATH="$PWD/node_modules/.bin:$PATH"
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
