"""The one setting for what the functions run on: Python version and CPU architecture.

infra/capabilities/runtime.py turns it into the functions' runtime and architecture (and the layer's compatible
ones), infra/build_layer.py into pip's platform flags, so the layer's wheels always match the runtime. Plain Python
(no CDK import): the layer build uses it too.

To move to another runtime, change PYTHON_VERSION (and RUNTIME_GLIBC if the runtime's OS changes), then rebuild
the layer (`make layer`, which the Makefile also does when this file changes) and run the tests.
"""

from __future__ import annotations

from typing import Final

# The Lambda managed runtime python3.12 runs on Amazon Linux 2023.
PYTHON_VERSION: Final = "3.12"
# "arm64" (Graviton) or "x86_64", as Lambda names them.
ARCHITECTURE: Final = "arm64"
# The glibc of the runtime's OS (Amazon Linux 2023: glibc 2.34): the newest manylinux wheel it can load.
RUNTIME_GLIBC: Final = (2, 34)
# The oldest manylinux policy with wheels for aarch64 (manylinux2014 = manylinux_2_17).
OLDEST_MANYLINUX_GLIBC: Final = (2, 17)

# Lambda's architecture name -> the machine name in wheel platform tags.
_WHEEL_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}


def runtime_name(python_version: str = PYTHON_VERSION) -> str:
    """The Lambda runtime identifier, e.g. "python3.12"."""
    return f"python{python_version}"


def wheel_machine(architecture: str = ARCHITECTURE) -> str:
    try:
        return _WHEEL_MACHINE[architecture]
    except KeyError:
        raise ValueError(f"unknown Lambda architecture {architecture!r}: use one of {sorted(_WHEEL_MACHINE)}") from None


def manylinux_platform_tags(
    architecture: str = ARCHITECTURE,
    runtime_glibc: tuple[int, int] = RUNTIME_GLIBC,
    oldest_glibc: tuple[int, int] = OLDEST_MANYLINUX_GLIBC,
) -> list[str]:
    """Every manylinux platform tag the runtime can load, newest first: manylinux_2_34_aarch64 ...
    manylinux_2_17_aarch64, then the legacy alias manylinux2014_aarch64 (pip does not expand the
    manylinux_2_X tags downwards by itself: each one it may pick must be passed with its own --platform)."""
    machine = wheel_machine(architecture)
    major, newest_minor = runtime_glibc
    oldest_major, oldest_minor = oldest_glibc
    if major != oldest_major or newest_minor < oldest_minor:
        raise ValueError(f"runtime glibc {runtime_glibc} is older than the oldest manylinux policy {oldest_glibc}")
    tags = [f"manylinux_{major}_{minor}_{machine}" for minor in range(newest_minor, oldest_minor - 1, -1)]
    return [*tags, f"manylinux2014_{machine}"]
