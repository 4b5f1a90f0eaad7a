"""Cold import: how long importing each Lambda handler module takes, as a multiple of `import boto3`.

    .venv/bin/python bench/cold_import.py                  # every handler under functions/, 7 rounds
    .venv/bin/python bench/cold_import.py --rounds 11 --json /tmp/cold.json

A Lambda cold start imports the handler module before the first event. Each measurement here is a fresh process,
`python -X importtime -c 'import <module>'`, with the handler's code folder on PYTHONPATH (as Lambda puts the
function's code on sys.path) and the layer's packages from this environment. The time taken is the cumulative
figure `-X importtime` prints for the module itself, so the interpreter's own start-up is left out.

The machine's speed and load change absolute times a lot (the 2 cores here are shared), so every round measures
`import boto3` too, in the same way, and each handler's figure is reported as a ratio to that round's boto3
figure; the table shows the medians over the rounds. boto3 is the yardstick because every function needs it and
Lambda's Python runtime has it: a handler cannot import faster than boto3, and 1.5x is the goal
(docs/performance.md, "Cold imports").

One warm-up round (not counted) compiles the bytecode caches first, so every counted round reads .pyc files as a
Lambda layer with compiled files would. The order of the processes is shuffled within each round, so a burst of
load on the machine does not always hit the same handler.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
BASELINE = "boto3"
GOAL_RATIO = 1.5
# What every function gets from the stack (infra/capabilities/runtime.py); nothing else of this shell leaks in.
LAMBDA_LIKE_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "wabacast",
    "POWERTOOLS_METRICS_NAMESPACE": "wabacast",
    "LOG_LEVEL": "INFO",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# "import time:       619 |     630031 | boto3": self and cumulative microseconds, then the indented module name.
_IMPORTTIME_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)\s*$")


@dataclass(frozen=True)
class Target:
    """A module to import: `label` in reports, `module` imported from `path_entry` (None: the environment)."""

    label: str
    module: str
    path_entry: Path | None = None


def handler_targets(functions_dir: Path = FUNCTIONS_DIR) -> list[Target]:
    """Every handler file of functions/<folder>/, imported as Lambda does: `<file stem>` from its folder."""
    return [
        Target(f"{path.parent.name}/{path.stem}", path.stem, path.parent)
        for path in sorted(functions_dir.glob("*/*.py"))
        if not path.name.startswith("_")
    ]


def cumulative_import_us(importtime_output: str, module: str) -> int:
    """The cumulative microseconds of the top-level import of `module` in `-X importtime` output."""
    for line in importtime_output.splitlines():
        match = _IMPORTTIME_LINE.match(line)
        if match and match.group(2) == " " and match.group(3) == module:
            return int(match.group(1))
    raise ValueError(f"no top-level import of {module!r} in the -X importtime output")


def child_environment(target: Target, base: Mapping[str, str]) -> dict[str, str]:
    environment = {key: value for key, value in base.items() if key in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    environment.update(LAMBDA_LIKE_ENVIRONMENT)
    if target.path_entry is not None:
        environment["PYTHONPATH"] = str(target.path_entry)
    return environment


def import_seconds(target: Target, python: str = sys.executable) -> float:
    """Import `target` in a fresh process and return its cumulative import time in seconds."""
    completed = subprocess.run(  # noqa: S603 (fixed argv: this interpreter and a module name from functions/)
        [python, "-X", "importtime", "-c", f"import {target.module}"],
        capture_output=True,
        text=True,
        env=child_environment(target, os.environ),
        cwd=REPO_ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {target.label} failed:\n{completed.stderr[-2000:]}")
    return cumulative_import_us(completed.stderr, target.module) / 1_000_000


@dataclass(frozen=True)
class Result:
    label: str
    median_s: float
    min_s: float
    max_s: float
    median_ratio: float
    max_ratio: float


def summarize(label: str, seconds: Sequence[float], ratios: Sequence[float]) -> Result:
    return Result(
        label=label,
        median_s=statistics.median(seconds),
        min_s=min(seconds),
        max_s=max(seconds),
        median_ratio=statistics.median(ratios),
        max_ratio=max(ratios),
    )


def measure(targets: Sequence[Target], rounds: int, seed: int = 0) -> tuple[Result, list[Result]]:
    """`rounds` rounds of one fresh process per target plus one for boto3; ratios are per round."""
    baseline = Target(BASELINE, BASELINE)
    everything = [baseline, *targets]
    shuffler = random.Random(seed)
    for target in everything:  # warm-up: writes the bytecode caches, not counted
        import_seconds(target)
    times: dict[str, list[float]] = {target.label: [] for target in everything}
    for _ in range(rounds):
        order = list(everything)
        shuffler.shuffle(order)
        for target in order:
            times[target.label].append(import_seconds(target))
    baseline_times = times[BASELINE]
    baseline_result = summarize(BASELINE, baseline_times, [1.0] * rounds)
    results = [
        summarize(
            target.label,
            times[target.label],
            [seconds / base for seconds, base in zip(times[target.label], baseline_times, strict=True)],
        )
        for target in targets
    ]
    return baseline_result, results


def report(baseline: Result, results: Sequence[Result], rounds: int) -> str:
    lines = [
        f"Cold import, median of {rounds} fresh processes each (python -X importtime), ratio to `import boto3` "
        f"in the same round; goal <= {GOAL_RATIO}x",
        "",
        "| module | median s | min-max s | ratio to boto3 (median) | worst round | goal met |",
        "|---|---|---|---|---|---|",
        f"| import boto3 | {baseline.median_s:.3f} | {baseline.min_s:.3f}-{baseline.max_s:.3f} | 1.00 | | |",
    ]
    for result in results:
        met = "yes" if result.median_ratio <= GOAL_RATIO else "NO"
        lines.append(
            f"| {result.label} | {result.median_s:.3f} | {result.min_s:.3f}-{result.max_s:.3f} | "
            f"{result.median_ratio:.2f} | {result.max_ratio:.2f} | {met} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7, help="counted rounds (default 7)")
    parser.add_argument("--only", action="append", default=[], help="a handler label such as sender/handler")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    arguments = parser.parse_args(argv)
    targets = handler_targets()
    if arguments.only:
        targets = [target for target in targets if target.label in arguments.only]
    baseline, results = measure(targets, arguments.rounds)
    print(report(baseline, results, arguments.rounds))
    if arguments.json:
        arguments.json.write_text(
            json.dumps({"rounds": arguments.rounds, "results": [vars(r) for r in (baseline, *results)]}, indent=2)
        )
    return 0 if all(result.median_ratio <= GOAL_RATIO for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
