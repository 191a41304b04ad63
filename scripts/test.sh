#!/usr/bin/env bash
# The one test command (npm test): installs what it needs, brings the local stack up, runs every suite.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  npm ci --no-audit --no-fund
fi

step "static checks: typecheck, lint, format"
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check

step "local stack: up (downloads on first run only)"
npx tsx src/stack/cli.ts up

step "tests"
# Suites that share the real servers run one file at a time; each test uses its own topics, queues and ids.
npx jest --runInBand "$@"
