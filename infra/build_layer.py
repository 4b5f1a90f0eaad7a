"""Build the Lambda layer folder: build/layer/python/ = third-party dependencies for Lambda + the `wabacast` package.

No Docker: pip downloads manylinux wheels for the functions' runtime (`--only-binary=:all:`, one `--platform` per
manylinux tag the runtime can load, from infra/lambda_platform.py), so the result matches the runtime whatever
machine builds it. A dependency without such a wheel stops the build with a message naming it. The dependency list
is the `dependencies` of pyproject.toml minus what the Lambda runtime already provides (boto3 and its own
dependencies), so the layer and the local environment cannot drift apart.

Bytecode: Lambda's /opt is read-only, so a layer without .pyc files makes Python compile every module it imports on
every cold start (measured: the sender's import takes 1.7x as long, docs/performance.md "Cold imports"). The build
compiles the layer with an interpreter of the runtime's version (`--compile-with`, else `python3.12` on PATH), in
unchecked-hash mode so the files' times after unzipping do not matter. Bytecode is version-specific: without such an
interpreter the layer ships without it, and the build says so.

Run with `make layer` (or `.venv/bin/python infra/build_layer.py`); `make synth` / `make deploy` package the result.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable instead of infra/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from infra.lambda_platform import ARCHITECTURE, PYTHON_VERSION, manylinux_platform_tags
from infra.paths import LAYER_DIR, PYPROJECT, SHARED_PACKAGE_DIR

# Runs a command (argv) and returns its exit code: subprocess in real builds, a fake in tests.
Runner = Callable[[Sequence[str]], int]
# In the Lambda Python runtime already: shipping them would only shadow the runtime's copies with other versions.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# Lambda's limit for a function's code plus all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024


def distribution_name(requirement: str) -> str:
    """`aws-lambda-powertools[tracer]==3.37.0` -> `aws-lambda-powertools` (normalised: lower case, `-`)."""
    name = requirement
    for separator in ("[", "=", "<", ">", "!", "~", ";", " "):
        name = name.split(separator, 1)[0]
    return name.strip().lower().replace("_", "-").replace(".", "-")


def layer_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The runtime dependencies of pyproject.toml that the layer must ship."""
    with pyproject.open("rb") as file:
        dependencies: list[str] = tomllib.load(file)["project"]["dependencies"]
    return [req for req in dependencies if distribution_name(req) not in RUNTIME_PROVIDED]


def platform_flags(platforms: Sequence[str] | None = None) -> list[str]:
    """pip's flags for binary wheels of the runtime: one --platform per manylinux tag it can load."""
    tags = list(platforms) if platforms is not None else manylinux_platform_tags()
    flags = ["--only-binary=:all:"]
    for tag in tags:
        flags += ["--platform", tag]
    return [*flags, "--python-version", PYTHON_VERSION, "--implementation", "cp"]


def pip_install_command(target: Path, requirements: Sequence[str], for_this_machine: bool = False) -> list[str]:
    platform = ["--only-binary=:all:"] if for_this_machine else platform_flags()
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        # pip would compile with the build machine's Python, whose bytecode a 3.12 runtime ignores: compile_layer
        # writes the runtime's own.
        "--no-compile",
        "--target",
        str(target),
        *platform,
        *requirements,
    ]


def pip_probe_command(destination: Path, requirement: str) -> list[str]:
    """Download one requirement and its dependencies as wheels for the runtime (nothing installed)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(destination),
        *platform_flags(),
        requirement,
    ]


class MissingWheelError(RuntimeError):
    """pip found no wheel for the runtime's platforms for a requirement (or one of its dependencies)."""

    def __init__(self, requirements: Sequence[str], platforms: Sequence[str]) -> None:
        self.requirements = list(requirements)
        self.platforms = list(platforms)
        if requirements:
            named = ", ".join(requirements)
            what = f"No wheel for the Lambda runtime for: {named} (or one of its dependencies)."
        else:
            what = "pip could not install the layer's requirements, although each one downloads on its own."
        super().__init__(
            f"{what} Looked for CPython {PYTHON_VERSION} wheels tagged {', '.join(platforms)}. "
            "Pin a version that publishes such a wheel, or change the runtime in infra/lambda_platform.py. "
            "pip's own output above has the details (it also fails this way when PyPI cannot be reached)."
        )


def _run(command: Sequence[str]) -> int:
    return subprocess.run(command, check=False).returncode  # noqa: S603 (argv built here, no shell)


def install_requirements(
    site_packages: Path, requirements: Sequence[str], run: Runner = _run, *, for_this_machine: bool = False
) -> None:
    """pip install the requirements for the runtime into `site_packages`; on failure, find which requirement has
    no wheel for the runtime by downloading each one on its own, and raise MissingWheelError naming them."""
    if run(pip_install_command(site_packages, requirements, for_this_machine)) == 0:
        return
    missing = []
    with tempfile.TemporaryDirectory(prefix="wabacast-layer-probe-") as probe_dir:
        for requirement in requirements:
            if run(pip_probe_command(Path(probe_dir), requirement)) != 0:
                missing.append(requirement)
    raise MissingWheelError(missing, manylinux_platform_tags())


def remove_runtime_provided(site_packages: Path) -> list[str]:
    """Delete packages the runtime provides that came in as transitive dependencies (botocore, s3transfer)."""
    removed: list[str] = []
    for name in RUNTIME_PROVIDED:
        module = name.replace("-", "_")
        paths = [site_packages / module, *site_packages.glob(f"{module}-*.dist-info")]
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path)
                removed.append(path.name)
    return removed


def copy_shared_package(site_packages: Path, source: Path = SHARED_PACKAGE_DIR) -> Path:
    destination = site_packages / source.name
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return destination


def bytecode_interpreter(explicit: str | None = None) -> str | None:
    """The interpreter that compiles the layer: `explicit`, else `python3.12` on PATH if it runs (a pyenv shim of a
    version that is not installed does not); None when there is none."""
    if explicit:
        return explicit
    found = shutil.which(f"python{PYTHON_VERSION}")
    return found if found and interpreter_version(found) is not None else None


def interpreter_version(python: str) -> str | None:
    """`python`'s "major.minor", or None when it does not run."""
    try:
        completed = subprocess.run(  # noqa: S603 (an interpreter the builder named, a fixed script)
            [python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip()


def compile_command(python: str, site_packages: Path) -> list[str]:
    # Optimization level 0 (plain .pyc, what Lambda's interpreter loads: it does not run with -O); unchecked-hash:
    # the .pyc is used without comparing the source's time, which unzipping the layer does not keep exactly.
    return [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(site_packages)]


def compile_layer(site_packages: Path, python: str | None, runtime_version: str | None = None) -> bool:
    """Write the layer's bytecode with `python` if it is the runtime's version; False (and why) when it cannot."""
    runtime_version = runtime_version or PYTHON_VERSION
    if python is None:
        print(
            f"WARNING: no python{PYTHON_VERSION} found: the layer ships without bytecode, so every cold start compiles "
            f"what it imports (pass --compile-with or LAYER_PYTHON=/path/to/python{PYTHON_VERSION})",
            file=sys.stderr,
        )
        return False
    version = interpreter_version(python)
    if version is None:
        raise SystemExit(f"ERROR: {python} does not run, so it cannot write the layer's bytecode")
    if version != runtime_version:
        raise SystemExit(f"ERROR: {python} is Python {version}; the layer's bytecode must be {runtime_version}'s")
    # compileall exits non-zero when a file does not compile (a test fixture in a package, say): those stay source.
    subprocess.run(compile_command(python, site_packages), check=False, stdout=subprocess.DEVNULL)  # noqa: S603
    print(f"Compiled the layer's bytecode with {python} (Python {version})")
    return True


def directory_size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file() and not file.is_symlink())


def build(
    layer_dir: Path = LAYER_DIR,
    compile_with: str | None = None,
    *,
    for_this_machine: bool = False,
    bytecode: bool = True,
) -> int:
    """Rebuild `layer_dir` from scratch and return its unzipped size in bytes.

    `for_this_machine`: the same layer for this interpreter's platform and version instead of Lambda's, compiled by
    it (or not, `bytecode=False`): what bench/cold_import.py --layer measures a layer's cold imports with."""
    site_packages = layer_dir / "python"
    if layer_dir.exists():
        shutil.rmtree(layer_dir)
    site_packages.mkdir(parents=True)

    requirements = layer_requirements()
    platform = "this machine" if for_this_machine else f"CPython {PYTHON_VERSION} on {ARCHITECTURE} (manylinux)"
    print(f"Installing {len(requirements)} requirements for {platform}:")
    for requirement in requirements:
        print(f"  {requirement}")
    install_requirements(site_packages, requirements, for_this_machine=for_this_machine)

    removed = remove_runtime_provided(site_packages)
    shutil.rmtree(site_packages / "bin", ignore_errors=True)  # console scripts with this machine's shebang: unusable
    if removed:
        print(f"Removed (provided by the Lambda runtime): {', '.join(sorted(removed))}")
    copied = copy_shared_package(site_packages)
    print(f"Copied {SHARED_PACKAGE_DIR.relative_to(PYPROJECT.parent)} -> {copied}")
    if not bytecode:
        print("No bytecode, as asked")
    elif for_this_machine:
        compile_layer(site_packages, sys.executable, f"{sys.version_info[0]}.{sys.version_info[1]}")
    else:
        compile_layer(site_packages, bytecode_interpreter(compile_with))

    size = directory_size(layer_dir)
    print(f"Layer {layer_dir}: {size / 1024 / 1024:.1f} MB unzipped (Lambda limit: 250 MB for code + all layers)")
    return size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--layer-dir", type=Path, default=LAYER_DIR, help=f"output folder (default: {LAYER_DIR})")
    parser.add_argument(
        "--compile-with",
        default=os.environ.get("LAYER_PYTHON") or None,
        help=f"a Python {PYTHON_VERSION} interpreter to write the layer's bytecode (default: $LAYER_PYTHON, "
        f"else python{PYTHON_VERSION} on PATH)",
    )
    parser.add_argument(
        "--for-this-machine",
        action="store_true",
        help="build for this interpreter's platform and version (to measure cold imports: bench/cold_import.py)",
    )
    parser.add_argument("--no-bytecode", action="store_true", help="ship source only (to measure what it costs)")
    args = parser.parse_args(argv)
    try:
        size = build(
            args.layer_dir, args.compile_with, for_this_machine=args.for_this_machine, bytecode=not args.no_bytecode
        )
    except MissingWheelError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    if size >= LAMBDA_UNZIPPED_LIMIT_BYTES:
        print("ERROR: the layer is over Lambda's 250 MB unzipped limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
