"""CDK app entry point: `make synth` runs it with Python, `make deploy` through the CDK CLI (see cdk.json).

The synthesized templates go to cdk.out/ (or wherever the CDK CLI asks, via CDK_OUTDIR). Every synth runs the
cdk-nag AWS Solutions checks; an unacknowledged finding fails it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable instead of infra/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.paths import CDK_JSON, CDK_OUT_DIR, FUNCTIONS_DIR, LAYER_DIR
from infra.stack import WabacastStack

STACK_NAME = "Wabacast"


def load_context(cdk_json: Path = CDK_JSON) -> dict[str, Any]:
    """The context (feature flags) of cdk.json, so `python infra/app.py` and tests match what the CDK CLI runs."""
    context: dict[str, Any] = json.loads(cdk_json.read_text())["context"]
    return context


def build_app(
    *,
    layer_dir: Path = LAYER_DIR,
    functions_dir: Path = FUNCTIONS_DIR,
    outdir: Path | None = None,
) -> tuple[cdk.App, WabacastStack]:
    """The app with the cdk-nag checks plugged in, and its one stack."""
    app = cdk.App(
        outdir=str(outdir or os.environ.get("CDK_OUTDIR") or CDK_OUT_DIR),
        context=load_context(),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = WabacastStack(
        app,
        STACK_NAME,
        layer_dir=layer_dir,
        functions_dir=functions_dir,
        description="wabacast: serverless multi-tenant WhatsApp bulk-messaging engine",
    )
    return app, stack


def missing_inputs(layer_dir: Path = LAYER_DIR, functions_dir: Path = FUNCTIONS_DIR) -> list[str]:
    """Human-readable problems that would stop a synth, checked up front for a clear message."""
    problems: list[str] = []
    if not (layer_dir / "python").is_dir():
        problems.append(f"The Lambda layer folder {layer_dir / 'python'} does not exist: run `make layer` first.")
    if not (functions_dir / "api").is_dir():
        problems.append(f"The Lambda code folder {functions_dir / 'api'} does not exist.")
    return problems


def main() -> int:
    problems = missing_inputs(LAYER_DIR, FUNCTIONS_DIR)
    if problems:
        for problem in problems:
            print(f"ERROR: {problem}", file=sys.stderr)
        return 1
    app, _ = build_app()
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
