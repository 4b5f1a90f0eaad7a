"""infra/build_layer.py: what goes into the Lambda layer (checked without building it: no network in tests)."""

from __future__ import annotations

from pathlib import Path

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
