"""CDK app entry point: `make synth` runs it with Python, `make deploy` through the CDK CLI (see cdk.json).

The synthesized templates go to cdk.out/ (or wherever the CDK CLI asks, via CDK_OUTDIR). Every synth runs the
cdk-nag AWS Solutions checks; an unacknowledged finding fails it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable instead of infra/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.capabilities import api, delivery, scheduling
from infra.capabilities.names import ENVIRONMENT_CONTEXT, ENVIRONMENTS, Names
from infra.paths import CDK_JSON, CDK_OUT_DIR, FUNCTIONS_DIR, LAYER_DIR
from infra.stack import WabacastStack

# The folders of functions/ the stack ships as code assets.
CODE_FOLDERS = (
    api.CODE_FOLDER,
    delivery.PLANNER_CODE_FOLDER,
    delivery.SENDER_CODE_FOLDER,
    scheduling.CODE_FOLDER,
)


def load_context(cdk_json: Path = CDK_JSON) -> dict[str, Any]:
    """The context (feature flags) of cdk.json, so `python infra/app.py` and tests match what the CDK CLI runs."""
    context: dict[str, Any] = json.loads(cdk_json.read_text())["context"]
    return context


def build_app(
    *,
    layer_dir: Path = LAYER_DIR,
    functions_dir: Path = FUNCTIONS_DIR,
    outdir: Path | None = None,
    context: Mapping[str, Any] | None = None,
) -> tuple[cdk.App, WabacastStack]:
    """The app with the cdk-nag checks plugged in, and its one stack.

    `context` adds to (or overrides) cdk.json's context, like `cdk synth -c key=value` does (the CDK CLI passes
    its `-c` values through the CDK_CONTEXT_JSON variable, which App() reads too), e.g. {"sandboxBaseUrl": ...}.
    The context value `env` (dev, the default, or prod) names the stack (Wabacast-dev, Wabacast-prod) and
    everything in it.
    """
    app = cdk.App(
        outdir=str(outdir or os.environ.get("CDK_OUTDIR") or CDK_OUT_DIR),
        context={**load_context(), **(context or {})},
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    names = Names.from_context({ENVIRONMENT_CONTEXT: app.node.try_get_context(ENVIRONMENT_CONTEXT)})
    stack = WabacastStack(
        app,
        names.stack_name,
        layer_dir=layer_dir,
        functions_dir=functions_dir,
        names=names,
        description=f"wabacast ({names.environment}): serverless multi-tenant WhatsApp bulk-messaging engine",
    )
    return app, stack


def missing_inputs(layer_dir: Path = LAYER_DIR, functions_dir: Path = FUNCTIONS_DIR) -> list[str]:
    """Human-readable problems that would stop a synth, checked up front for a clear message."""
    problems: list[str] = []
    if not (layer_dir / "python").is_dir():
        problems.append(f"The Lambda layer folder {layer_dir / 'python'} does not exist: run `make layer` first.")
    for folder in CODE_FOLDERS:
        if not (functions_dir / folder).is_dir():
            problems.append(f"The Lambda code folder {functions_dir / folder} does not exist.")
    return problems


def parse_context(pairs: Sequence[str]) -> dict[str, str]:
    """`-c key=value` pairs, as the CDK CLI takes them, into a context dict."""
    context: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"a context value is written key=value (e.g. env=prod), not {pair!r}")
        context[key] = value
    return context


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthesize the wabacast stack into cdk.out/ (offline).")
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a context value, as with the CDK CLI, e.g. -c {ENVIRONMENT_CONTEXT}=prod (one of "
        f"{', '.join(ENVIRONMENTS)}; default dev), -c alarmEmail=ops@example.com, -c senderReservedConcurrency=100",
    )
    args = parser.parse_args(argv)
    problems = missing_inputs(LAYER_DIR, FUNCTIONS_DIR)
    if problems:
        for problem in problems:
            print(f"ERROR: {problem}", file=sys.stderr)
        return 1
    try:
        app, stack = build_app(context=parse_context(args.context))
    except ValueError as error:  # a context value the settings refuse: say which, without a jsii stack trace
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    app.synth()
    print(f"Synthesized {stack.stack_name} into {app.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
