"""Starts the real local stack (`python -m wabacast_local`) as a subprocess, once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.local_stack_process import LocalStackProcess


@dataclass(frozen=True)
class RunningLocalStack:
    api_url: str
    admin_api_key: str
    api_key: str
    state: dict[str, Any]


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLocalStack]:
    stack = LocalStackProcess(tmp_path_factory.mktemp("local-stack"))
    try:
        state = stack.wait_until_ready()
        yield RunningLocalStack(
            api_url=str(state["apiUrl"]),
            admin_api_key=str(state["adminApiKey"]),
            api_key=str(state["apiKey"]),
            state=state,
        )
    finally:
        exit_code = stack.stop()
    # A clean shutdown: SIGTERM handled, exit code 0, no traceback, the state file removed.
    assert exit_code == 0, f"the local stack exited with {exit_code}\n{stack.logs()}"
    assert "Traceback" not in stack.shutdown_log(), stack.logs()
    assert not stack.state_file.exists()


@pytest.fixture
def anonymous(local_stack: RunningLocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_stack.api_url, timeout=30) as client:
        yield client


@pytest.fixture
def demo_business(local_stack: RunningLocalStack) -> Iterator[httpx.Client]:
    """A client with the API key of the demo business the stack created at startup."""
    with httpx.Client(
        base_url=local_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {local_stack.api_key}"}
    ) as client:
        yield client


@pytest.fixture
def admin(local_stack: RunningLocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=local_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {local_stack.admin_api_key}"}
    ) as client:
        yield client
