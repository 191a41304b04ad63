#!/usr/bin/env bash
# The one test command (npm test): installs what it needs, brings the local stack up, runs every suite.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

source scripts/ensure-deps.sh

step "static checks: typecheck, lint, format"
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check

if [ ! -x "${KTS_CHROMIUM:-/usr/bin/chromium}" ]; then
  step "Debian's chromium, for the Temporal Web UI browser test (first run only)"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "✖ chromium is missing: install it (sudo apt-get install chromium) or point KTS_CHROMIUM at one" >&2
    exit 1
  fi
fi

step "local stack: up (downloads on first run only)"
node_modules/.bin/tsx src/stack/cli.ts up

step "full Temporal server for its test (go install on first run only, ~6 min; then cached)"
node_modules/.bin/tsx src/stack/cli.ts build-temporal-server

step "tests"
# Suites that share the real servers run one file at a time; each test uses its own topics, queues and ids.
results=.stack/jest-results.json
mkdir -p .stack
status=0
node_modules/.bin/jest --runInBand --json --outputFile="$results" "$@" || status=$?
# One plain closing line, whatever the runner printed above.
node -e 'const r=require(process.argv[1]);console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' "$PWD/$results" || true

step "deploy check against the test stack (live histories, registry subjects, generated types)"
# What a pipeline runs before a deploy: the saga runs the suites left on the server (on the
# production task queue: the main job's), the schemas against the registry's subjects. The newest
# runs only, to stay quick.
node_modules/.bin/tsx src/deploy/cli.ts check --limit 200 || status=1
exit $status
