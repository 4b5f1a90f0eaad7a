"""What a handler's cold start loads: no X-Ray SDK anywhere, and heavy modules only on the paths that need them.

Nothing here is timed (bench/cold_import.py measures, docs/performance.md has the figures): these tests guard the
imports that make the figures, so a new top-level import of a heavy module fails a test instead of slowing every
cold start unnoticed.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
SHARED_DIR = REPO_ROOT / "layers" / "shared"
HANDLER_FILES = sorted(path for path in FUNCTIONS_DIR.glob("*/*.py") if not path.name.startswith("_"))

# Loaded by no handler at import: the tracing SDK is gone (Lambda's active tracing needs none, docs/decisions.md),
# and the others belong to one code path each (a Twilio account, a provider call, parsing a number).
NEVER_AT_IMPORT = ("aws_xray_sdk", "twilio", "phonenumbers", "httpx", "requests")
# Powertools packages whose import loads every event class they know (the parser's models, the batch
# processors' stream events and asyncio).
POWERTOOLS_NOT_AT_IMPORT = ("aws_lambda_powertools.utilities.parser", "aws_lambda_powertools.utilities.batch")
# Loaded by no handler at all: the functions do not trace through an SDK.
TRACING_SDK_MODULES = ("aws_xray_sdk", "aws_lambda_powertools.tracing")


def modules_loaded_by_importing(handler: Path) -> set[str]:
    """Import `handler` as Lambda does (its folder on sys.path) in a fresh interpreter; the modules it loaded."""
    script = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"import {handler.stem}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(handler.parent), str(SHARED_DIR)])}
    completed = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True
    )
    loaded: list[str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return set(loaded)


# Handlers that import their service's wiring (and so boto3) at their first invocation, not at import: the account
# sync's service module lands apart from its handler.
WIRED_AT_FIRST_INVOCATION = {"scheduler/account_sync"}


def _loaded_packages(loaded: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(name for name in loaded if any(name == p or name.startswith(f"{p}.") for p in packages))


def test_every_function_folder_has_handlers() -> None:
    # GIVEN / WHEN the handler files are listed
    labels = {f"{path.parent.name}/{path.stem}" for path in HANDLER_FILES}

    # THEN the ones the stack deploys are there (a renamed folder must not silently empty the checks below)
    assert {"api/handler", "api/authorizer", "planner/handler", "planner/worker", "sender/handler"} <= labels
    assert "sender/dead_letter" in labels


@pytest.mark.parametrize("handler", HANDLER_FILES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_importing_a_handler_loads_no_tracing_sdk_and_no_path_specific_module(handler: Path) -> None:
    # GIVEN a handler module, imported in a fresh interpreter as a cold start does
    # WHEN the modules it loaded are listed
    loaded = modules_loaded_by_importing(handler)

    # THEN neither the X-Ray SDK nor a module of a single code path came with it
    assert _loaded_packages(loaded, NEVER_AT_IMPORT) == []
    assert _loaded_packages(loaded, POWERTOOLS_NOT_AT_IMPORT) == []
    # and the import did load what the handler is made of (the check above is not vacuous)
    if f"{handler.parent.name}/{handler.stem}" in WIRED_AT_FIRST_INVOCATION:
        assert "wabacast.adapters.metrics" in loaded
    else:
        assert "boto3" in loaded
    assert "aws_lambda_powertools.logging" in loaded


def test_parsing_a_number_loads_phonenumbers_on_demand() -> None:
    # GIVEN the shared phone module imported in a fresh interpreter
    script = (
        "import sys\n"
        "from wabacast.phone import normalize_phone_number\n"
        "print('phonenumbers' in sys.modules)\n"
        "print(normalize_phone_number('+14155552671'))\n"
        "print('phonenumbers' in sys.modules)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(SHARED_DIR)}

    # WHEN a number is parsed
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True
    )

    # THEN phonenumbers was not loaded before, and is after
    assert completed.stdout.split() == ["False", "+14155552671", "True"]


def test_the_api_cold_start_builds_its_routes_without_the_openapi_models_and_the_docs_load_them() -> None:
    # GIVEN the API handler imported as a cold start does, with the environment its first invocation reads
    openapi_models = "aws_lambda_powertools.event_handler.openapi.models"
    script = (
        "import sys\n"
        "import handler\n"
        "app = handler._app()\n"
        f"print({openapi_models!r} in sys.modules)\n"
        "from wabacast.api.app import _openapi_document\n"
        "document = _openapi_document(app)\n"
        f"print({openapi_models!r} in sys.modules, 'bearerAuth' in document)\n"
    )
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FUNCTIONS_DIR / "api"), str(SHARED_DIR)]),
        "TABLE_NAME": "wabacast-test",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }

    # WHEN its app is built (every route registered), then the OpenAPI document is asked for
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True
    )

    # THEN Powertools' OpenAPI models were loaded only for the document (they cost about 0.4x `import boto3`)
    assert completed.stdout.split() == ["False", "True", "True"]


def _python_sources() -> list[Path]:
    sources = [*FUNCTIONS_DIR.rglob("*.py"), *(SHARED_DIR / "wabacast").rglob("*.py")]
    return sorted(path for path in sources if "__pycache__" not in path.parts)


def _tracing_uses(tree: ast.AST) -> list[str]:
    """Imports of a tracing SDK, and any use of Powertools' Tracer or its response capture, in one module."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith(TRACING_SDK_MODULES)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(TRACING_SDK_MODULES):
                found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names if alias.name == "Tracer"]
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in ("Tracer", "capture_lambda_handler", "capture_method", "capture_response"):
                found.append(name)
        elif isinstance(node, ast.keyword) and node.arg == "capture_response":
            found.append(node.arg)
        elif isinstance(node, ast.Constant) and node.value == "POWERTOOLS_TRACER_CAPTURE_RESPONSE":
            found.append(node.value)
    return found


def test_no_function_or_shared_module_traces_through_an_sdk_or_captures_responses() -> None:
    # GIVEN every module the functions and the layer ship
    sources = _python_sources()

    # WHEN each is searched for the X-Ray SDK, Powertools' Tracer and its response capture
    offenders = {
        str(path.relative_to(REPO_ROOT)): uses
        for path in sources
        if (uses := _tracing_uses(ast.parse(path.read_text(), filename=str(path))))
    }

    # THEN there is none: a traced response would keep one-time API keys and phone numbers in X-Ray
    assert len(sources) > 20
    assert offenders == {}


def test_the_checker_finds_a_tracer_and_response_capture() -> None:
    # GIVEN a module written the way the functions were before
    source = (
        "from aws_lambda_powertools import Logger, Tracer\n"
        "import aws_xray_sdk.core\n"
        "tracer = Tracer()\n"
        "@tracer.capture_lambda_handler(capture_response=True)\n"
        "def handler(event, context): ...\n"
    )

    # WHEN it is checked
    uses = _tracing_uses(ast.parse(source))

    # THEN every way in is reported
    assert {"aws_lambda_powertools.Tracer", "aws_xray_sdk.core", "capture_lambda_handler", "capture_response"} <= set(
        uses
    )


def test_the_runtime_dependencies_do_not_bring_the_xray_sdk() -> None:
    # GIVEN the runtime dependencies, which the Lambda layer ships (infra/build_layer.py)
    import tomllib

    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]

    # WHEN Powertools' requirement is read
    powertools = next(req for req in dependencies if req.startswith("aws-lambda-powertools"))

    # THEN it has no "tracer" extra (which installs aws-xray-sdk) and nothing else names the SDK
    assert "tracer" not in powertools
    assert not any("xray" in req for req in dependencies)
