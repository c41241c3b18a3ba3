"""Compile the gettext catalogs (.po) of tacops into .mo files with msgfmt."""

import pathlib
import subprocess
import sys

locale = pathlib.Path(__file__).resolve().parents[1] / "src" / "tacops" / "locale"
for po in sorted(locale.glob("*/LC_MESSAGES/*.po")):
    mo = po.with_suffix(".mo")
    result = subprocess.run(["msgfmt", "--check-format", "-o", str(mo), str(po)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"msgfmt failed on {po}: {result.stderr}")
