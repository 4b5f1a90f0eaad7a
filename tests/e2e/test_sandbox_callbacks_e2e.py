"""Status callbacks closing the loop on the real local stack: the sandbox posts signed Meta-format sent / delivered /
read callbacks (with loss, duplicates and reordering) to the stack's Meta webhook, and the queue's counters end up
exactly at what the sandbox says it delivered.

A stack of its own (not the session one): it is started with callback chaos settings.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.local_stack_process import LocalStackProcess
from wabacast_local import demo

pytestmark = pytest.mark.e2e

# Every webhook is one invocation of the stack's single API execution environment (10-20 callbacks/s on 2 cores), so
# 200 messages (about 500 callbacks) keep this test near a minute; WABACAST_E2E_CALLBACK_MESSAGES=1000 (the most one
# inline queue takes) runs the full campaign, in about 4 minutes.
MESSAGES = int(os.environ.get("WABACAST_E2E_CALLBACK_MESSAGES", "200"))
RECIPIENTS = [f"+34612{number:06d}" for number in range(300000, 300000 + MESSAGES)]
COMPLETION_TIMEOUT_SECONDS = 30 + MESSAGES * 0.25
CALLBACKS_TIMEOUT_SECONDS = 30 + MESSAGES * 0.3
CHAOS_ARGS = (
    "--sandbox-delivered-delay-ms",
    "100-600",
    "--sandbox-read-delay-ms",
    "200-1500",
    "--sandbox-read-rate",
    "0.6",
    "--sandbox-callback-loss-rate",
    "0.05",
    "--sandbox-callback-duplicate-rate",
    "0.05",
    "--sandbox-callback-reorder-rate",
    "0.2",
)


@pytest.fixture(scope="module")
def callbacks_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStackProcess, dict[str, Any]]]:
    stack = LocalStackProcess(tmp_path_factory.mktemp("callbacks-stack"), *CHAOS_ARGS, sandbox_callbacks=True)
    try:
        yield stack, stack.wait_until_ready()
    finally:
        # Ctrl-C while callbacks may still be due: exit code 0, no traceback.
        exit_code = stack.stop(signal.SIGINT)
    assert exit_code == 0, stack.logs()
    assert "Traceback" not in stack.shutdown_log(), stack.logs()


def test_a_1000_message_campaign_counts_exactly_the_callbacks_the_sandbox_posted(callbacks_stack):
    stack, state = callbacks_stack
    api = httpx.Client(base_url=state["apiUrl"], timeout=30, headers={"Authorization": f"Bearer {state['apiKey']}"})
    sandbox = httpx.Client(base_url=state["sandboxUrl"], timeout=30)

    # GIVEN a sandbox account at a high rate and a queue of 1,000 recipients
    account = api.post(
        "/api/whatsapp/accounts",
        json={
            "displayName": "Callbacks",
            "phoneNumber": "+14155552672",
            "provider": "sandbox",
            "limits": {"messagesPerSecond": 200},
        },
    )
    assert account.status_code == 201, account.text
    queue = api.post(
        "/api/whatsapp/queue",
        json={
            "name": "Loop",
            "accountId": account.json()["id"],
            "template": {"name": "spring_promo", "language": "en_US"},
            "audience": {"recipients": [{"phoneNumber": number} for number in RECIPIENTS]},
        },
    )
    assert queue.status_code == 201, queue.text
    queue_id = queue.json()["id"]

    # WHEN it is sent, and the sandbox has posted every callback it planned
    started = time.monotonic()
    response = api.post(f"/api/whatsapp/queue/{queue_id}/process")
    assert response.status_code == 202, response.text
    progress = response.json()
    while progress["status"] != "COMPLETED" and time.monotonic() - started < COMPLETION_TIMEOUT_SECONDS:
        time.sleep(1)
        progress = api.get(f"/api/whatsapp/queue/{queue_id}/process").json()
    completed_in = time.monotonic() - started
    assert progress["status"] == "COMPLETED", f"after {completed_in:.0f} s: {progress}\n{stack.logs()}"
    summary: dict[str, int] = {}
    waited = time.monotonic()
    while time.monotonic() - waited < CALLBACKS_TIMEOUT_SECONDS:
        summary = sandbox.get("/callbacks", params={"limit": 1}).json()["summary"]
        if summary["pending"] == 0:
            break
        time.sleep(0.5)
    assert summary["pending"] == 0, summary
    log = sandbox.get("/callbacks").json()["callbacks"]
    progress = api.get(f"/api/whatsapp/queue/{queue_id}/process").json()
    elapsed = time.monotonic() - started

    # THEN what the webhook acknowledged is what the counters say: a message counts as delivered when its delivered
    # or its read callback got through, as read when its read did, once, whatever the duplicates and the order
    acknowledged = [entry for entry in log if entry["outcome"] == "acknowledged"]
    delivered = {entry["messageId"] for entry in acknowledged if entry["status"] in ("delivered", "read")}
    read = {entry["messageId"] for entry in acknowledged if entry["status"] == "read"}
    counters = progress["counters"]
    print(
        f"\n{MESSAGES} messages: COMPLETED in {completed_in:.1f} s, callbacks done at {elapsed:.1f} s; "
        f"sandbox {summary}; counters {counters}"
    )
    assert (counters["total"], counters["sent"], counters["failed"]) == (MESSAGES, MESSAGES, 0), counters
    assert (counters["delivered"], counters["read"]) == (len(delivered), len(read)), (counters, summary)
    # AND the chaos did happen, and the webhook refused nothing
    assert summary["lost"] > 0, summary
    assert any(entry.get("duplicate") for entry in acknowledged), summary
    assert _reads_before_delivered(acknowledged) > 0, "no read was posted before its delivered"
    assert (summary["refused"], summary["unreachable"]) == (0, 0), [e for e in log if e["outcome"] != "acknowledged"]
    assert {entry["reference"].partition("/")[0] for entry in acknowledged} == {queue_id}
    assert "Traceback" not in stack.stderr_path.read_text(errors="replace"), stack.logs()


def _reads_before_delivered(log: list[dict[str, Any]]) -> int:
    read: set[str] = set()
    overtaken = 0
    for entry in log:
        if entry["status"] == "read":
            read.add(entry["messageId"])
        elif entry["status"] == "delivered" and entry["messageId"] in read:
            overtaken += 1
    return overtaken


def test_the_demo_campaign_ends_with_delivered_and_read_counts_and_a_cost(callbacks_stack, capsys):
    stack, _ = callbacks_stack
    # GIVEN the running stack (with callbacks on)
    # WHEN `make demo` runs a campaign of 60 messages on it
    exit_code = demo.main(["--messages", "60", "--state-dir", str(stack.state_file.parent), "--timeout", "240"])
    # THEN it ends once the queue completed and every callback was posted, with the counts and a cost
    output = capsys.readouterr().out
    assert exit_code == 0, output
    final = output.strip().splitlines()[-1]
    match = re.search(
        r"COMPLETED .*: 60 messages, sent 60, delivered (\d+), read (\d+), failed 0; cost ([0-9.]+) USD", final
    )
    assert match, final
    delivered, read, cost = int(match[1]), int(match[2]), float(match[3])
    # 5 % of statuses are lost in this stack's chaos: a message can lose both its delivered and its read
    assert 50 <= delivered <= 60
    assert 0 < read <= delivered
    assert cost > 0
