"""infra/build_layer.py: what goes into the Lambda layer (checked without building it: no network in tests)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from infra import build_layer, lambda_platform


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


def test_pip_installs_binary_wheels_for_every_manylinux_tag_the_runtime_loads(tmp_path: Path) -> None:
    # GIVEN a target folder
    # WHEN building the pip command
    command = build_layer.pip_install_command(tmp_path / "python", ["pydantic==2.14.4"])

    # THEN it asks for CPython 3.12 binary wheels only (no compiler, no Docker), one --platform per manylinux tag
    # Amazon Linux 2023 (glibc 2.34) on arm64 can load, newest first
    platforms = [command[i + 1] for i, flag in enumerate(command) if flag == "--platform"]
    assert platforms == [f"manylinux_2_{minor}_aarch64" for minor in range(34, 16, -1)] + ["manylinux2014_aarch64"]
    assert "--only-binary=:all:" in command
    flags = " ".join(command)
    assert "--python-version 3.12 --implementation cp" in flags
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    assert command[-1] == "pydantic==2.14.4"


@pytest.mark.parametrize(
    ("architecture", "glibc", "expected"),
    [
        ("arm64", (2, 34), [*(f"manylinux_2_{m}_aarch64" for m in range(34, 16, -1)), "manylinux2014_aarch64"]),
        ("x86_64", (2, 28), [*(f"manylinux_2_{m}_x86_64" for m in range(28, 16, -1)), "manylinux2014_x86_64"]),
        ("arm64", (2, 17), ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]),
    ],
)
def test_manylinux_tags_run_from_the_runtime_glibc_down_to_manylinux2014(
    architecture: str, glibc: tuple[int, int], expected: list[str]
) -> None:
    # GIVEN / WHEN / THEN
    assert lambda_platform.manylinux_platform_tags(architecture, glibc) == expected


def test_a_runtime_older_than_manylinux2014_or_an_unknown_architecture_is_refused() -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="older than"):
        lambda_platform.manylinux_platform_tags("arm64", (2, 12))
    with pytest.raises(ValueError, match="unknown Lambda architecture"):
        lambda_platform.manylinux_platform_tags("ppc64", (2, 34))


def test_the_runtime_and_the_layer_platform_come_from_one_setting() -> None:
    # GIVEN the one setting
    # WHEN reading what the functions run on and what the layer is built for
    from infra.capabilities import runtime

    # THEN they agree
    assert runtime.RUNTIME.name == f"python{lambda_platform.PYTHON_VERSION}"
    assert runtime.ARCHITECTURE.name == lambda_platform.ARCHITECTURE
    command = build_layer.pip_install_command(Path("python"), ["x"])
    assert command[command.index("--python-version") + 1] == lambda_platform.PYTHON_VERSION
    assert f"manylinux2014_{lambda_platform.wheel_machine()}" in command


class _FakePip:
    """Plays pip: the install fails; a probe fails for the requirements listed as having no wheel."""

    def __init__(self, without_wheel: set[str]) -> None:
        self.without_wheel = without_wheel
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> int:
        self.commands.append(list(command))
        if "install" in command:
            return 1 if self.without_wheel else 0
        return 1 if command[-1] in self.without_wheel else 0


def test_a_requirement_without_a_wheel_for_the_runtime_is_named_in_the_error(tmp_path: Path) -> None:
    # GIVEN three requirements, one of which has no wheel for the runtime's platforms
    pip = _FakePip(without_wheel={"grpcio==1.0.0"})

    # WHEN installing them
    with pytest.raises(build_layer.MissingWheelError) as raised:
        build_layer.install_requirements(tmp_path, ["httpx==0.28.1", "grpcio==1.0.0", "pydantic==2.14.4"], run=pip)

    # THEN each requirement was probed on its own, and the error names the one without a wheel and the platforms
    assert raised.value.requirements == ["grpcio==1.0.0"]
    message = str(raised.value)
    assert "grpcio==1.0.0" in message
    assert "manylinux_2_34_aarch64" in message
    assert "manylinux2014_aarch64" in message
    assert [c[-1] for c in pip.commands[1:]] == ["httpx==0.28.1", "grpcio==1.0.0", "pydantic==2.14.4"]
    assert all("download" in c for c in pip.commands[1:])


def test_a_successful_install_probes_nothing(tmp_path: Path) -> None:
    # GIVEN requirements that all have wheels
    pip = _FakePip(without_wheel=set())
    # WHEN installing them
    build_layer.install_requirements(tmp_path, ["httpx==0.28.1"], run=pip)
    # THEN pip ran once
    assert len(pip.commands) == 1


def test_the_layer_build_exits_with_the_message_instead_of_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a build that finds no wheel for one requirement
    def build(layer_dir: Path, *args: object, **kwargs: object) -> int:
        raise build_layer.MissingWheelError(["grpcio==1.0.0"], ["manylinux2014_aarch64"])

    monkeypatch.setattr(build_layer, "build", build)
    # WHEN running the command
    code = build_layer.main(["--layer-dir", str(tmp_path)])
    # THEN it fails with the message
    assert code == 1
    assert "No wheel for the Lambda runtime for: grpcio==1.0.0" in capsys.readouterr().err


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
