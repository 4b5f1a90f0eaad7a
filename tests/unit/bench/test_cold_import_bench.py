"""bench/cold_import.py: what each measured process imports, from where, and whether it may write bytecode."""

from __future__ import annotations

from pathlib import Path

import cold_import


def test_handlers_import_from_the_checkout_and_write_bytecode_by_default(tmp_path: Path) -> None:
    # GIVEN a checkout with two functions
    for folder in ("api", "sender"):
        (tmp_path / "functions" / folder).mkdir(parents=True)
        (tmp_path / "functions" / folder / "handler.py").write_text("")

    # WHEN its handlers are listed
    targets = cold_import.handler_targets(tmp_path)

    # THEN each imports from its folder and the checkout's layers/shared, with bytecode caches as usual
    assert [(t.label, t.module) for t in targets] == [("api/handler", "handler"), ("sender/handler", "handler")]
    assert targets[0].path_entries == (tmp_path / "functions" / "api", tmp_path / "layers" / "shared")
    assert "PYTHONDONTWRITEBYTECODE" not in cold_import.child_environment(targets[0], {"PATH": "/bin"})


def test_with_a_layer_handlers_import_from_its_python_folder_and_write_no_bytecode(tmp_path: Path) -> None:
    # GIVEN a checkout with a function and a built layer folder
    (tmp_path / "functions" / "sender").mkdir(parents=True)
    (tmp_path / "functions" / "sender" / "handler.py").write_text("")
    layer = tmp_path / "layer"

    # WHEN its handlers are listed against the layer
    [target] = cold_import.handler_targets(tmp_path, layer)
    environment = cold_import.child_environment(target, {"PATH": "/bin", "AWS_PROFILE": "someone"})

    # THEN the layer's python/ is the shared code, and nothing is compiled to disk (Lambda's /opt is read-only)
    assert target.path_entries == (tmp_path / "functions" / "sender", layer / "python")
    assert environment["PYTHONDONTWRITEBYTECODE"] == "1"
    assert environment["PYTHONPATH"].split(":") == [str(tmp_path / "functions" / "sender"), str(layer / "python")]
    assert "AWS_PROFILE" not in environment
