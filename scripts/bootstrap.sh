#!/usr/bin/env bash
# Prepare this machine for the demo or the tests: a virtualenv with the project installed,
# and the system services the tests use (redis-server, PostgreSQL, Chromium). Idempotent.
#   scripts/bootstrap.sh          python packages only (the demo)
#   scripts/bootstrap.sh --test   also the system packages the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing the project and its dev dependencies"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet -e '.[dev]'
    touch "$stamp"
fi

[ "${1:-}" = "--test" ] || exit 0

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "bootstrap: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]})" >&2
        exit 1
    fi
    echo "bootstrap: apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # Debian starts the services it installs; the tests start their own on free ports.
    (service redis-server stop || true) >/dev/null 2>&1
    (service postgresql stop || true) >/dev/null 2>&1
fi
