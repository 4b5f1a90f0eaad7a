"""Delivery end to end on the real local stack: API -> planner (scheduled) -> SQS FIFO -> sender -> sandbox provider.

A stack of its own (not the session one): it checks exactly what reached the sandbox, and how the stack stops with
delivery running.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.local_stack_process import LocalStackProcess

pytestmark = pytest.mark.e2e

RECIPIENTS = [f"+1415555{number:04d}" for number in range(2700, 2900)]  # 200 numbers phonenumbers accepts
COMPLETION_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def delivery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStackProcess, dict[str, Any]]]:
    stack = LocalStackProcess(tmp_path_factory.mktemp("delivery-stack"))
    try:
        yield stack, stack.wait_until_ready()
    finally:
        # Ctrl-C, as a developer stops `make run`: prompt, exit code 0, no traceback.
        started = time.monotonic()
        exit_code = stack.stop(signal.SIGINT)
        stopped_in = time.monotonic() - started
    assert exit_code == 0, stack.logs()
    assert stopped_in < 10, f"stopping took {stopped_in:.1f} s\n{stack.logs()}"
    assert "Traceback" not in stack.shutdown_log(), stack.logs()


def test_a_queue_of_200_recipients_is_sent_through_the_sandbox(delivery_stack):
    stack, state = delivery_stack
    api = httpx.Client(base_url=state["apiUrl"], timeout=30, headers={"Authorization": f"Bearer {state['apiKey']}"})
    sandbox = httpx.Client(base_url=state["sandboxUrl"], timeout=30)

    # GIVEN a sandbox account sending 50 messages per second, and a queue of 200 inline recipients
    account = api.post(
        "/api/whatsapp/accounts",
        json={
            "displayName": "Bulk sender",
            "phoneNumber": "+14155552671",
            "provider": "sandbox",
            "limits": {"messagesPerSecond": 50},
        },
    )
    assert account.status_code == 201, account.text
    account_id = account.json()["id"]
    queue = api.post(
        "/api/whatsapp/queue",
        json={
            "name": "Spring promo",
            "accountId": account_id,
            "template": {"name": "spring_promo", "language": "en_US"},
            "audience": {"recipients": [{"phoneNumber": number} for number in RECIPIENTS]},
        },
    )
    assert queue.status_code == 201, queue.text
    queue_id = queue.json()["id"]

    # WHEN the queue is started
    started = time.monotonic()
    response = api.post(f"/api/whatsapp/queue/{queue_id}/process")
    assert response.status_code == 202, response.text

    # THEN it completes: the schedule runs the planner, the mapping feeds the senders, the sandbox accepts
    progress = response.json()
    while progress["status"] != "COMPLETED" and time.monotonic() - started < COMPLETION_TIMEOUT_SECONDS:
        time.sleep(0.5)
        polled = api.get(f"/api/whatsapp/queue/{queue_id}/process")
        assert polled.status_code == 200, polled.text
        progress = polled.json()
    elapsed = time.monotonic() - started
    print(f"\n200 messages: COMPLETED in {elapsed:.1f} s")
    assert progress["status"] == "COMPLETED", f"after {elapsed:.0f} s: {progress}\n{stack.logs()}"
    counters = progress["counters"]
    assert (counters["total"], counters["sent"], counters["pending"]) == (200, 200, 0), counters
    assert (counters["failed"], counters["skipped"], counters["optedOut"]) == (0, 0, 0), counters

    # AND the sandbox got each recipient exactly once, from this account, with the queue's template
    messages = sandbox.get("/messages").json()["messages"]
    assert len(messages) == 200
    assert sorted(message["to"] for message in messages) == sorted(number.removeprefix("+") for number in RECIPIENTS)
    assert {message["phoneNumberId"] for message in messages} == {account_id}
    assert {(message["template"], message["language"]) for message in messages} == {("spring_promo", "en_US")}

    # AND no function failed on the way
    assert "Traceback" not in stack.stderr_path.read_text(errors="replace"), stack.logs()
