"""Where the CDK app finds its inputs, relative to the repository root (not the current directory)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = REPO_ROOT / "pyproject.toml"
CDK_JSON = REPO_ROOT / "cdk.json"
# The shared `wabacast` package, copied into the layer.
SHARED_PACKAGE_DIR = REPO_ROOT / "layers" / "shared" / "wabacast"
# Lambda code assets, one folder each: functions/api (the API handler and the authorizer), functions/planner,
# functions/sender (the sender and the dead-letter consumer), functions/scheduler.
FUNCTIONS_DIR = REPO_ROOT / "functions"
# The web console's static files, deployed to S3 behind CloudFront.
CONSOLE_DIR = REPO_ROOT / "console"
# Output of `make layer` (infra/build_layer.py): build/layer/python/... is the layer's content.
LAYER_DIR = REPO_ROOT / "build" / "layer"
CDK_OUT_DIR = REPO_ROOT / "cdk.out"
