#!/usr/bin/env bash
# Sets this machine up and runs `fraudwatch demo` (Ctrl-C stops everything it started).
# Run from the repo root: sudo bash deploy/demo.sh   (as root: bash deploy/demo.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/setup.sh demo
exec .venv/bin/fraudwatch demo "$@"
