"""infra/app.py and cdk.json: how `make synth` / `make deploy` enter the app."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from infra import app
from infra.capabilities import api, delivery, scheduling
from infra.paths import CDK_JSON, FUNCTIONS_DIR, LAYER_DIR, REPO_ROOT

# (code folder, handler) of every function the stack creates.
HANDLERS = [
    (api.CODE_FOLDER, api.API_HANDLER),
    (api.CODE_FOLDER, api.AUTHORIZER_HANDLER),
    (delivery.PLANNER_CODE_FOLDER, delivery.PLANNER_HANDLER),
    (delivery.PLANNER_CODE_FOLDER, delivery.PLAN_WORKER_HANDLER),
    (delivery.SENDER_CODE_FOLDER, delivery.SENDER_HANDLER),
    (delivery.SENDER_CODE_FOLDER, delivery.DEAD_LETTER_HANDLER),
    (scheduling.CODE_FOLDER, scheduling.HANDLER),
]


def test_app_refuses_to_synthesize_without_the_layer_and_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no build/layer folder
    monkeypatch.setattr(app, "LAYER_DIR", tmp_path / "build" / "layer")

    # WHEN running the app
    exit_code = app.main([])

    # THEN it stops before building anything, with the command to run
    assert exit_code == 1
    assert "run `make layer` first" in capsys.readouterr().err


def test_app_names_every_missing_code_folder(tmp_path: Path) -> None:
    # GIVEN a layer, and a functions folder with only functions/api
    (tmp_path / "layer" / "python").mkdir(parents=True)
    (tmp_path / "functions" / "api").mkdir(parents=True)

    # WHEN checking the inputs
    problems = app.missing_inputs(tmp_path / "layer", tmp_path / "functions")

    # THEN the planner, sender and scheduler folders are reported, nothing else
    assert problems == [
        f"The Lambda code folder {tmp_path / 'functions' / folder} does not exist."
        for folder in ("planner", "sender", "scheduler")
    ]


def test_app_reads_the_layer_and_code_from_the_repository_not_the_current_directory() -> None:
    # GIVEN / WHEN the default inputs of the app
    # THEN they are the repository's build/layer and functions folders, wherever the app is started from
    assert LAYER_DIR == REPO_ROOT / "build" / "layer"
    assert FUNCTIONS_DIR == REPO_ROOT / "functions"
    assert app.missing_inputs(LAYER_DIR, FUNCTIONS_DIR) == app.missing_inputs()


def test_cdk_json_runs_the_same_app_as_make_synth_with_the_recommended_feature_flags() -> None:
    # GIVEN cdk.json, which the CDK CLI reads
    config = json.loads(CDK_JSON.read_text())

    # WHEN / THEN the CLI runs infra/app.py with the project's venv, and app.py passes the same context to App()
    assert config["app"] == ".venv/bin/python infra/app.py"
    assert app.load_context() == config["context"]
    assert config["context"]["@aws-cdk/aws-iam:minimizePolicies"] is True


def _module_level_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_stack_points_at_the_agreed_handlers() -> None:
    # GIVEN / WHEN the handlers the capabilities configure
    # THEN they are the agreed ones (the template tests check that the functions use them)
    assert HANDLERS == [
        ("api", "handler.lambda_handler"),
        ("api", "authorizer.lambda_handler"),
        ("planner", "handler.lambda_handler"),
        ("planner", "worker.lambda_handler"),
        ("sender", "handler.lambda_handler"),
        ("sender", "dead_letter.lambda_handler"),
        ("scheduler", "handler.lambda_handler"),
    ]


# Handlers the stack already points at while their module is written on another branch: the check is an expected
# failure until the module exists, and runs (and must pass) as soon as it does.
PENDING_HANDLERS: dict[tuple[str, str], str] = {}


def _handler_params() -> list[Any]:
    params = []
    for folder, handler in HANDLERS:
        marks = []
        pending = PENDING_HANDLERS.get((folder, handler))
        if pending is not None:
            module = handler.split(".")[0]
            missing = not (FUNCTIONS_DIR / folder / f"{module}.py").exists()
            marks.append(pytest.mark.xfail(missing, reason=pending, strict=True))
        params.append(pytest.param(folder, handler, marks=marks, id=f"{folder}/{handler}"))
    return params


@pytest.mark.parametrize(("folder", "handler"), _handler_params())
def test_the_handlers_the_stack_points_at_exist_in_functions(folder: str, handler: str) -> None:
    # GIVEN the handler the stack configures, as module.function inside functions/<folder>
    module, function = handler.split(".")
    source = FUNCTIONS_DIR / folder / f"{module}.py"
    assert source.exists(), f"{source} does not exist: the stack would ship a function Lambda cannot load"

    # WHEN reading that module
    names = _module_level_names(source.read_text())

    # THEN it defines the function Lambda will call
    assert function in names


def test_context_values_are_read_as_the_cdk_cli_writes_them() -> None:
    # GIVEN / WHEN `-c key=value` pairs, as `make synth` passes them
    context = app.parse_context(["env=prod", "alarmEmail=ops@example.com", "metaBaseUrl=https://x.test/a=b"])
    # THEN each becomes a context value (only the first = separates)
    assert context == {"env": "prod", "alarmEmail": "ops@example.com", "metaBaseUrl": "https://x.test/a=b"}


@pytest.mark.parametrize("pair", ["env", "=prod"])
def test_a_context_value_without_key_or_equals_is_refused(pair: str) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="key=value"):
        app.parse_context([pair])


def test_an_unknown_environment_stops_the_app_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a layer folder (so the inputs are there) and an environment that is not dev or prod
    (tmp_path / "layer" / "python").mkdir(parents=True)
    monkeypatch.setattr(app, "LAYER_DIR", tmp_path / "layer")

    # WHEN running the app as `make synth ENV=staging` would
    exit_code = app.main(["-c", "env=staging"])

    # THEN it stops with the rule, not a stack trace
    assert exit_code == 1
    assert "must be one of dev, prod" in capsys.readouterr().err
