"""infra/build_layer.py: what goes into the Lambda layer (checked without building it: no network in tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra import build_layer


def test_layer_ships_the_runtime_dependencies_of_pyproject_except_boto3() -> None:
    # GIVEN pyproject.toml's runtime dependencies
    # WHEN computing what the layer installs
    requirements = build_layer.layer_requirements()

    # THEN it is exactly the agreed pinned set; boto3 comes with the Lambda runtime
    assert sorted(build_layer.distribution_name(r) for r in requirements) == [
        "aws-lambda-powertools",
        "httpx",
        "phonenumbers",
        "pydantic",
        "twilio",
        "tzdata",
    ]
    # No "tracer" extra: the functions trace with Lambda active tracing, without the X-Ray SDK (docs/decisions.md 16)
    assert "aws-lambda-powertools==3.37.0" in requirements
    assert {"pydantic==2.14.4", "phonenumbers==9.0.43", "httpx==0.28.1", "twilio==9.13.0"} <= set(requirements)


def test_pip_installs_binary_wheels_for_python_312_on_arm64(tmp_path: Path) -> None:
    # GIVEN a target folder
    # WHEN building the pip command
    command = build_layer.pip_install_command(tmp_path / "python", ["pydantic==2.14.4"])

    # THEN it asks for manylinux aarch64 CPython 3.12 wheels only, so no compiler or Docker is needed
    flags = " ".join(command)
    assert "--only-binary=:all: --platform manylinux2014_aarch64 --python-version 3.12 --implementation cp" in flags
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    assert command[-1] == "pydantic==2.14.4"


def test_packages_of_the_lambda_runtime_are_removed_and_wabacast_is_copied(tmp_path: Path) -> None:
    # GIVEN a layer folder where a transitive dependency brought botocore, and a wabacast package to copy
    site_packages = tmp_path / "python"
    for folder in ("botocore", "botocore-1.44.8.dist-info", "pydantic"):
        (site_packages / folder).mkdir(parents=True)
    source = tmp_path / "src" / "wabacast"
    (source / "__pycache__").mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")

    # WHEN cleaning up and copying
    removed = build_layer.remove_runtime_provided(site_packages)
    copied = build_layer.copy_shared_package(site_packages, source)

    # THEN botocore is gone, the rest stays, and wabacast is importable from python/ without bytecode
    assert sorted(removed) == ["botocore", "botocore-1.44.8.dist-info"]
    assert sorted(p.name for p in site_packages.iterdir()) == ["pydantic", "wabacast"]
    assert copied == site_packages / "wabacast"
    assert [p.name for p in copied.iterdir()] == ["__init__.py"]


def _runtime_version_is_this_interpreters(monkeypatch: pytest.MonkeyPatch) -> str:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    monkeypatch.setattr(build_layer, "PYTHON_VERSION", version)
    return version


def test_the_layer_ships_unchecked_hash_bytecode_of_the_runtimes_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a layer folder with a module, and an interpreter of the runtime's version
    _runtime_version_is_this_interpreters(monkeypatch)
    package = tmp_path / "python" / "somepackage"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 1\n")

    # WHEN the layer is compiled
    compiled = build_layer.compile_layer(tmp_path / "python", sys.executable)

    # THEN the module has plain (not -O) bytecode for that version, checked by hash only if at all: Lambda's /opt is
    # read-only, and unzipping the layer does not keep the source times a timestamp check would compare
    assert compiled is True
    [pyc] = (package / "__pycache__").iterdir()
    assert pyc.name == f"__init__.{sys.implementation.cache_tag}.pyc"
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked


def test_an_interpreter_of_another_version_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a runtime version that is not this interpreter's
    monkeypatch.setattr(build_layer, "PYTHON_VERSION", "2.7")

    # WHEN the layer is compiled with this interpreter
    # THEN the build stops: its bytecode would be ignored by the runtime
    with pytest.raises(SystemExit, match=r"bytecode must be 2\.7's"):
        build_layer.compile_layer(tmp_path, sys.executable)


def test_without_an_interpreter_of_the_runtimes_version_the_layer_ships_source_and_says_so(
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    # GIVEN no interpreter of the runtime's version
    # WHEN the layer is compiled
    compiled = build_layer.compile_layer(tmp_path, None)

    # THEN nothing is written and the build warns
    assert compiled is False
    assert list(tmp_path.iterdir()) == []
    assert "ships without bytecode" in capsys.readouterr().err


def test_the_interpreter_is_the_named_one_or_python312_on_path_if_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a python3.12 on PATH that runs (this interpreter)
    monkeypatch.setattr(build_layer.shutil, "which", lambda name: sys.executable)

    # WHEN / THEN an explicit interpreter wins, else the one on PATH
    assert build_layer.bytecode_interpreter("/opt/py312/bin/python") == "/opt/py312/bin/python"
    assert build_layer.bytecode_interpreter(None) == sys.executable

    # GIVEN instead a python3.12 on PATH that does not run (a pyenv shim of a version that is not installed)
    shim = tmp_path / "python3.12"
    shim.write_text("#!/bin/sh\nexit 127\n")
    shim.chmod(0o755)
    monkeypatch.setattr(build_layer.shutil, "which", lambda name: str(shim))

    # WHEN / THEN there is none, and naming it explicitly stops the build with the reason
    assert build_layer.bytecode_interpreter(None) is None
    with pytest.raises(SystemExit, match="does not run"):
        build_layer.compile_layer(tmp_path, str(shim))
