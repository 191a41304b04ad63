#!/usr/bin/env bash
# Parses the Prometheus alert rules with promtool, built from its Go module (cached by Go after the first run).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || { echo "needs the Go toolchain (apt-get install golang) to build promtool" >&2; exit 2; }
exec go run github.com/prometheus/prometheus/cmd/promtool@v0.316.0 check rules docker/prometheus/rules/*.rules.yml
