"""Shared fixtures for the CDK tests: the app is built and synthesized once per session (per xdist worker).

The stack gets a tiny stand-in layer folder and stand-in handlers in a temporary folder, so these tests need
neither `make layer` (network) nor the real functions/ code: they check the infrastructure, not the handlers
(test_infra_app.py checks that the real handlers exist).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

# Before aws_cdk is imported anywhere: jsii prints a banner about Node 20 in every process otherwise.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `infra` is not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from aws_cdk.assertions import Template  # noqa: E402
from infra_helpers import Synthesized, logical_id  # noqa: E402

from infra.app import build_app  # noqa: E402
from infra.stack import WabacastStack  # noqa: E402

STUB_HANDLER = "def lambda_handler(event, context):\n    return None\n"
# Code folder -> modules, as the stack expects them under functions/.
STUB_MODULES = {
    "api": ("handler.py", "authorizer.py"),
    "planner": ("handler.py", "worker.py"),
    "sender": ("handler.py", "dead_letter.py"),
    "scheduler": ("handler.py", "account_sync.py"),
}


@pytest.fixture(scope="session")
def stub_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(layer_dir, functions_dir): a layer folder with an almost empty python/, and functions/* with stubs."""
    root = tmp_path_factory.mktemp("cdk-inputs")
    layer_dir = root / "layer"
    (layer_dir / "python").mkdir(parents=True)
    (layer_dir / "python" / "README.txt").write_text("stand-in for build/layer in tests\n")
    for folder, modules in STUB_MODULES.items():
        code_dir = root / "functions" / folder
        code_dir.mkdir(parents=True)
        for module in modules:
            # Distinct content per folder: the same bytes would make CDK share one asset between folders.
            (code_dir / module).write_text(f"# functions/{folder}/{module}\n{STUB_HANDLER}")
    return layer_dir, root / "functions"


@pytest.fixture(scope="session")
def synthesized(stub_inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The real app (cdk.json context, cdk-nag plugin) synthesized once into a temporary cdk.out."""
    layer_dir, functions_dir = stub_inputs
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(layer_dir=layer_dir, functions_dir=functions_dir, outdir=outdir)
    error: Exception | None = None
    try:
        app.synth()
    except RuntimeError as exc:  # jsii surfaces the JavaScript error as RuntimeError
        error = exc
    return Synthesized(stack=stack, assembly_dir=outdir, error=error)


@pytest.fixture(scope="session")
def stack(synthesized: Synthesized) -> WabacastStack:
    return synthesized.stack


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Template:
    if synthesized.error is not None:
        pytest.fail(f"the app does not synthesize: {synthesized.error}")
    return Template.from_stack(synthesized.stack)


@pytest.fixture(scope="session")
def resources(template: Template) -> dict[str, dict[str, Any]]:
    """The template's Resources section, for assertions easier to write in plain Python."""
    found: dict[str, dict[str, Any]] = template.to_json()["Resources"]
    return found


@pytest.fixture(scope="session")
def function_ids(stack: WabacastStack) -> dict[str, str]:
    """Logical ids of the stack's functions by role (handler names alone are ambiguous: four are handler.py)."""
    return {
        "api": logical_id(stack, stack.api.function),
        "authorizer": logical_id(stack, stack.api.authorizer_function),
        "planner": logical_id(stack, stack.delivery.planner),
        "plan_worker": logical_id(stack, stack.delivery.plan_worker),
        "sender": logical_id(stack, stack.delivery.sender),
        "dead_letter": logical_id(stack, stack.delivery.dead_letter_function),
        "scheduler": logical_id(stack, stack.scheduling.function),
        "account_sync": logical_id(stack, stack.account_sync.function),
    }
