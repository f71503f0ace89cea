#!/usr/bin/env bash
# Sets this machine up and runs the linter, the type checker and the whole test suite; exits
# with the first failure's code (pytest's when both checks pass).
# Run from the repo root: sudo bash deploy/test.sh   (as root: bash deploy/test.sh)
# Extra arguments go to pytest, e.g. `bash deploy/test.sh -m "not integration"` or `-n 0`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/setup.sh test
.venv/bin/ruff check .
.venv/bin/mypy
# Three test processes, each with a session broker and Redis of its own (`-n 0` runs serially);
# worksteal hands a long module's remaining tests to whichever process is free.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n 3 --dist worksteal "$@"
