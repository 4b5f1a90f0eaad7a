"""Debian's Chromium for the console's browser tests, installed on first use (CI and new machines run as root).

`playwright install` downloads browser builds from a CDN, which this project's machines cannot reach; the
`playwright` wheel drives the distribution's browser instead (docs/local-stack.md, "The console").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
APT_TIMEOUT_SECONDS = 900


class BrowserUnavailableError(RuntimeError):
    pass


def ensure_chromium() -> Path:
    """The path of Chromium, installing Debian's package with apt-get when it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        raise BrowserUnavailableError(
            f"{CHROMIUM} is missing and cannot be installed here (needs apt-get as root): "
            "run `sudo apt-get update && sudo apt-get install -y chromium`"
        )
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt_get, "update"], [apt_get, "install", "-y", "--no-install-recommends", "chromium"]):
        print(f"installing the browser for the console tests: {' '.join(command)}", file=sys.stderr, flush=True)
        completed = subprocess.run(  # noqa: S603 (apt-get from PATH with fixed arguments)
            command, env=environment, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS, check=False
        )
        if completed.returncode != 0:
            raise BrowserUnavailableError(
                f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stderr[-2000:]}"
            )
    if not CHROMIUM.exists():
        raise BrowserUnavailableError(f"apt-get installed chromium, but {CHROMIUM} does not exist")
    return CHROMIUM


if __name__ == "__main__":
    print(ensure_chromium())
