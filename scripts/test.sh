#!/usr/bin/env bash
# Install tacops (scripts/install.sh), then run the whole test suite: unit tests, then the
# lab integration tests, which boot real systemd-nspawn hosts and need root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${TACOPS_VENV:-/opt/tacops/venv}
bash "$here/scripts/install.sh"

# Tools the unit tests drive on this machine: a PostgreSQL server (started by the tests
# on a Unix socket in a temporary directory), SoftHSM2 with PyKCS11, and the attribute
# tools; Apache and nginx for the static-zones tests (started by the tests on 127.0.0.1).
# A policy-rc.d keeps the packaged services from starting on install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=1
  trap 'rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  postgresql-15 softhsm2 python3-pykcs11 libcap2-bin attr acl e2fsprogs apache2 nginx-light
if [ "$created_policy" = 1 ]; then
  rm -f "$policy"
  trap - EXIT
fi

cd "$here"
"$venv/bin/python" -m pytest -p no:cacheprovider -ra "$@" tests
