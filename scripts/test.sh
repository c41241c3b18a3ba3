#!/usr/bin/env bash
# Install tacops (scripts/install.sh), then run the whole test suite: unit tests, then the
# lab integration tests, which boot real systemd-nspawn hosts and need root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${TACOPS_VENV:-/opt/tacops/venv}
bash "$here/scripts/install.sh"
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider -ra "$@" tests
