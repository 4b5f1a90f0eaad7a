"""Cold import: how long importing each Lambda handler module takes, as a multiple of `import boto3`.

    .venv/bin/python bench/cold_import.py                  # every handler under functions/, 7 rounds
    .venv/bin/python bench/cold_import.py --rounds 11 --json /tmp/cold.json
    .venv/bin/python bench/cold_import.py --source /path/to/other/checkout   # e.g. a worktree of an older commit
    .venv/bin/python bench/cold_import.py --layer /tmp/layer     # the handlers on a built layer folder, read-only

A Lambda cold start imports the handler module before the first event. Each measurement here is a fresh process,
`python -X importtime -c 'import <module>'`, with the handler's code folder on PYTHONPATH (as Lambda puts the
function's code on sys.path) and the layer's packages from this environment. The time taken is the cumulative
figure `-X importtime` prints for the module itself, so the interpreter's own start-up is left out.

The machine's speed and load change absolute times a lot (the 2 cores here are shared), so every round measures
`import boto3` too, in the same way, and each handler's figure is reported as a ratio to that round's boto3
figure; the table shows the medians over the rounds. boto3 is the yardstick because every function needs it and
Lambda's Python runtime has it: a handler cannot import faster than boto3, and 1.5x is the goal
(docs/performance.md, "Cold imports").

On a loaded machine the wall-clock figures of `-X importtime` swing with the other processes (a round where boto3
waited and the handler did not, or the reverse, makes a ratio of 0.3 or 10). So each process's CPU time (user +
system, from the kernel's accounting of the child) is measured too, minus the CPU time of a bare `python -c pass`
in the same round (the interpreter's start-up): CPU time barely moves with load, and its ratios are the ones to
compare between runs. Both ratios are reported.

One warm-up round (not counted) compiles the bytecode caches first, so every counted round reads .pyc files as a
Lambda layer with compiled files would. With `--layer DIR` the shared code and its dependencies come from a layer
folder instead (DIR/python, as `infra/build_layer.py` writes it, built for this machine's Python: see bench/README.md),
and the processes write no bytecode, as on Lambda's read-only /opt: a layer shipped without .pyc files is then
compiled on every import, as in a real cold start. The order of the processes is shuffled within each round, so a
burst of load on the machine does not always hit the same handler.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
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
    """A module to import: `label` in reports, `module` imported with `path_entries` first on sys.path."""

    label: str
    module: str
    path_entries: tuple[Path, ...] = ()
    read_only: bool = False  # write no bytecode (Lambda's /opt is read-only)


def handler_targets(source: Path = REPO_ROOT, layer: Path | None = None) -> list[Target]:
    """Every handler file of `source`/functions/<folder>/, imported as Lambda does: `<file stem>` from its folder,
    with that checkout's shared package (layers/shared) ahead of the installed one, or a built layer's python/."""
    shared = layer / "python" if layer else source / "layers" / "shared"
    return [
        Target(f"{path.parent.name}/{path.stem}", path.stem, (path.parent, shared), read_only=layer is not None)
        for path in sorted((source / "functions").glob("*/*.py"))
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
    if target.path_entries:
        environment["PYTHONPATH"] = os.pathsep.join(str(entry) for entry in target.path_entries)
    if target.read_only:
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


@dataclass(frozen=True)
class Sample:
    import_s: float  # wall clock, from -X importtime
    cpu_s: float  # user + system CPU time of the whole process


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def import_sample(target: Target | None, python: str = sys.executable) -> Sample:
    """Import `target` in a fresh process (None: import nothing, the interpreter's start-up alone)."""
    code = f"import {target.module}" if target else "pass"
    environment = child_environment(target, os.environ) if target else child_environment(Target("", ""), os.environ)
    before = _children_cpu_s()
    completed = subprocess.run(  # noqa: S603 (fixed argv: this interpreter and a module name from functions/)
        [python, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        check=False,
    )
    cpu = _children_cpu_s() - before
    if completed.returncode != 0:
        raise RuntimeError(f"importing {target.label if target else 'nothing'} failed:\n{completed.stderr[-2000:]}")
    imported = cumulative_import_us(completed.stderr, target.module) / 1_000_000 if target else 0.0
    return Sample(imported, cpu)


@dataclass(frozen=True)
class Result:
    label: str
    median_s: float
    min_s: float
    max_s: float
    median_ratio: float  # of the -X importtime wall clock
    max_ratio: float
    median_cpu_s: float  # CPU time of the import (the process's, less a bare interpreter's)
    median_cpu_ratio: float


def summarize(label: str, samples: Sequence[Sample], bases: Sequence[Sample], startups: Sequence[Sample]) -> Result:
    seconds = [sample.import_s for sample in samples]
    ratios = [sample.import_s / base.import_s for sample, base in zip(samples, bases, strict=True)]
    cpu = [max(sample.cpu_s - startup.cpu_s, 0.0) for sample, startup in zip(samples, startups, strict=True)]
    base_cpu = [max(base.cpu_s - startup.cpu_s, 1e-6) for base, startup in zip(bases, startups, strict=True)]
    return Result(
        label=label,
        median_s=statistics.median(seconds),
        min_s=min(seconds),
        max_s=max(seconds),
        median_ratio=statistics.median(ratios),
        max_ratio=max(ratios),
        median_cpu_s=statistics.median(cpu),
        median_cpu_ratio=statistics.median([c / b for c, b in zip(cpu, base_cpu, strict=True)]),
    )


def measure(targets: Sequence[Target], rounds: int, seed: int = 0) -> tuple[Result, list[Result]]:
    """`rounds` rounds of one fresh process per target, one for boto3 and one bare interpreter; ratios per round."""
    baseline = Target(BASELINE, BASELINE)
    everything: list[Target | None] = [None, baseline, *targets]
    shuffler = random.Random(seed)
    for target in everything:  # warm-up: writes the bytecode caches, not counted
        import_sample(target)
    samples: dict[str, list[Sample]] = {target.label if target else "": [] for target in everything}
    for _ in range(rounds):
        order = list(everything)
        shuffler.shuffle(order)
        for target in order:
            samples[target.label if target else ""].append(import_sample(target))
    startups, bases = samples[""], samples[BASELINE]
    baseline_result = summarize(BASELINE, bases, bases, startups)
    return baseline_result, [summarize(target.label, samples[target.label], bases, startups) for target in targets]


def report(baseline: Result, results: Sequence[Result], rounds: int) -> str:
    lines = [
        f"Cold import, median of {rounds} fresh processes each (python -X importtime), ratio to `import boto3` "
        f"in the same round; goal <= {GOAL_RATIO}x",
        "",
        "| module | importtime median s | min-max s | ratio to boto3 | worst round | import CPU s | CPU ratio "
        "to boto3 | goal met (CPU) |",
        "|---|---|---|---|---|---|---|---|",
        f"| import boto3 | {baseline.median_s:.3f} | {baseline.min_s:.3f}-{baseline.max_s:.3f} | 1.00 | | "
        f"{baseline.median_cpu_s:.3f} | 1.00 | |",
    ]
    for result in results:
        met = "yes" if result.median_cpu_ratio <= GOAL_RATIO else "NO"
        lines.append(
            f"| {result.label} | {result.median_s:.3f} | {result.min_s:.3f}-{result.max_s:.3f} | "
            f"{result.median_ratio:.2f} | {result.max_ratio:.2f} | {result.median_cpu_s:.3f} | "
            f"{result.median_cpu_ratio:.2f} | {met} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7, help="counted rounds (default 7)")
    parser.add_argument("--only", action="append", default=[], help="a handler label such as sender/handler")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--source", type=Path, default=REPO_ROOT, help="the checkout whose handlers to measure")
    parser.add_argument("--layer", type=Path, help="a built layer folder (with python/) to import the handlers from")
    arguments = parser.parse_args(argv)
    layer = arguments.layer.resolve() if arguments.layer else None
    targets = handler_targets(arguments.source.resolve(), layer)
    if arguments.only:
        targets = [target for target in targets if target.label in arguments.only]
    baseline, results = measure(targets, arguments.rounds)
    print(report(baseline, results, arguments.rounds))
    if arguments.json:
        arguments.json.write_text(
            json.dumps({"rounds": arguments.rounds, "results": [vars(r) for r in (baseline, *results)]}, indent=2)
        )
    return 0 if all(result.median_cpu_ratio <= GOAL_RATIO for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
