#!/usr/bin/env bash
# The main job (npm start): installs what it needs, then runs src/main.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh
exec node_modules/.bin/tsx src/main.ts "$@"
