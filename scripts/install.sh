#!/usr/bin/env bash
# Install tacops and what it drives on a Debian 12 machine, as root.
# Debian packages: systemd-nspawn, debootstrap, restic, OpenSSH and friends for the lab;
# Python packages: from requirements.lock into a virtual environment.
set -euo pipefail

venv=${TACOPS_VENV:-/opt/tacops/venv}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh must run as root (it installs Debian packages and the lab needs root)." >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  python3 python3-venv python3-pip \
  systemd-container debootstrap iproute2 \
  openssh-client restic rsync zstd tar util-linux e2fsprogs attr acl \
  ca-certificates gettext

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -r "$here/requirements.lock"
"$venv/bin/pip" install -q --no-deps -e "$here"
"$venv/bin/python" "$here/scripts/compile_catalogs.py"
echo "tacops installed in $venv: run $venv/bin/tacops --help"
