"""Starting and stopping the local stack as a developer does: Ctrl-C, a second `make run` on a taken port."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.e2e.local_stack_process import LocalStackProcess

pytestmark = pytest.mark.e2e


def test_ctrl_c_stops_the_stack_cleanly(tmp_path):
    # GIVEN a running stack
    stack = LocalStackProcess(tmp_path / "first")
    try:
        state = stack.wait_until_ready()
        assert httpx.get(f"{state['apiUrl']}/api/openapi.json", timeout=30).status_code == 200
    finally:
        # WHEN it gets Ctrl-C (SIGINT)
        exit_code = stack.stop(signal.SIGINT)

    # THEN it exits with 0, without a traceback, and takes its state file with it
    assert exit_code == 0, stack.logs()
    assert "Traceback" not in stack.shutdown_log(), stack.logs()
    assert not stack.state_file.exists()


def test_second_stack_on_a_taken_port_fails_clearly_and_leaves_the_first_alone(tmp_path):
    # GIVEN a running stack
    first = LocalStackProcess(tmp_path / "first")
    try:
        state = first.wait_until_ready()
        port = state["apiUrl"].rsplit(":", 1)[1]

        # WHEN a second one is started on the same port, with the same state directory
        second = LocalStackProcess(tmp_path / "second", port=int(port), state_dir=first.state_file.parent)
        exit_code = second.wait_for_exit()

        # THEN the second one exits with 1 and says why, without a traceback
        assert exit_code == 1, second.logs()
        stderr = second.stderr_path.read_text()
        assert "Address already in use" in stderr
        assert "--port 0" in stderr
        assert "Traceback" not in stderr
        # AND the first one still runs and is still described by its state file
        assert first.state_file.exists()
        response = httpx.get(
            f"{state['apiUrl']}/api/whatsapp/accounts",
            headers={"Authorization": f"Bearer {state['apiKey']}"},
            timeout=30,
        )
        assert response.status_code == 200
    finally:
        assert first.stop() == 0, first.logs()
