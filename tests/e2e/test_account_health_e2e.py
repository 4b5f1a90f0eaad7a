"""Account health on the real local stack: a sync reads the sandbox's Graph emulation, and a template the sandbox
pauses reaches the stack as Meta's signed `message_template_status_update`, which pauses the queue sending it.

A stack of its own (not the session one): the sandbox posts its account webhooks only with callbacks on.
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

RECIPIENTS = [f"+34612{number:06d}" for number in range(400000, 400050)]
PAUSE_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def health_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    stack = LocalStackProcess(tmp_path_factory.mktemp("health-stack"), sandbox_callbacks=True)
    try:
        yield stack.wait_until_ready()
    finally:
        exit_code = stack.stop(signal.SIGINT)
    assert exit_code == 0, stack.logs()


def test_a_sync_reads_the_sandbox_and_a_paused_template_pauses_its_queue(health_stack: dict[str, Any]) -> None:
    api = httpx.Client(
        base_url=health_stack["apiUrl"], timeout=30, headers={"Authorization": f"Bearer {health_stack['apiKey']}"}
    )
    sandbox = httpx.Client(base_url=health_stack["sandboxUrl"], timeout=30)
    # GIVEN a sandbox account sending slowly, synced on demand
    account = api.post(
        "/api/whatsapp/accounts",
        json={
            "displayName": "Health",
            "phoneNumber": "+14155552673",
            "provider": "sandbox",
            "limits": {"messagesPerSecond": 1},
        },
    )
    assert account.status_code == 201, account.text
    account_id = account.json()["id"]
    synced = api.post(f"/api/whatsapp/accounts/{account_id}/sync")
    assert synced.status_code == 200, synced.text
    assert (synced.json()["qualityRating"], synced.json()["providerStatus"]) == ("GREEN", "CONNECTED")
    assert synced.json()["lastSyncedAt"] is not None
    templates = api.get(f"/api/whatsapp/accounts/{account_id}/templates", params={"limit": 100}).json()["items"]
    assert ("spring_sale", "en_US", "APPROVED", "marketing") in {
        (t["name"], t["language"], t["status"], t["category"]) for t in templates
    }
    # AND a queue sending spring_sale, PROCESSING
    queue = api.post(
        "/api/whatsapp/queue",
        json={
            "name": "Health",
            "accountId": account_id,
            "template": {"name": "spring_sale", "language": "en_US"},
            "audience": {"recipients": [{"phoneNumber": number} for number in RECIPIENTS]},
        },
    )
    assert queue.status_code == 201, queue.text
    queue_id = queue.json()["id"]
    started = api.post(f"/api/whatsapp/queue/{queue_id}/process")
    assert started.status_code == 202, started.text

    # WHEN the sandbox (as Meta) pauses spring_sale for the account's WABA
    paused = sandbox.post(
        "/templates", json={"wabaId": account_id, "name": "spring_sale", "language": "en_US", "status": "PAUSED"}
    )
    assert paused.status_code == 200, paused.text

    # THEN the signed notification reaches the stack: the template is PAUSED and the queue paused, saying why
    deadline = time.monotonic() + PAUSE_TIMEOUT_SECONDS
    progress: dict[str, Any] = {}
    while time.monotonic() < deadline:
        progress = api.get(f"/api/whatsapp/queue/{queue_id}/process").json()
        if progress["status"] != "PROCESSING":
            break
        time.sleep(0.5)
    assert progress["status"] == "PAUSED", progress
    assert "spring_sale (en_US) is PAUSED" in progress["statusReason"]
    templates = api.get(f"/api/whatsapp/accounts/{account_id}/templates", params={"limit": 100}).json()["items"]
    assert ("spring_sale", "PAUSED") in {(t["name"], t["status"]) for t in templates}
