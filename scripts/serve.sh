#!/usr/bin/env bash
# Set up (first run only: the runtime dependencies, not the dev tools) and start the
# server. Flags are passed on, e.g.
#   ./scripts/serve.sh --service claude --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
[ -f .env ] || cp .env.example .env
exec .venv/bin/copilot-cli-proxy serve "$@"
