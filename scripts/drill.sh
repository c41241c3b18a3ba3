#!/usr/bin/env bash
# Install tacops (scripts/install.sh), then run a whole restore drill on the built-in lab.
# Extra arguments go to `tacops drill` (for example --mode operation or --report-dir DIR).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${TACOPS_VENV:-/opt/tacops/venv}
bash "$here/scripts/install.sh"
exec "$venv/bin/tacops" drill "$@"
