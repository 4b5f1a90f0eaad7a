"""The sandbox provider over HTTP: the Meta adapter against it, its settings at runtime, and what it records."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from wabacast.domain.jobs import ErrorClass
from wabacast.providers.base import OutboundMessage, ProviderError, SendReceipt
from wabacast.providers.meta import MetaCloudProvider
from wabacast_local.sandbox import SandboxServer

ACCOUNT = "acc_01SANDBOX"


def message(to: str = "+34600000001", **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "job_id": "job_1",
        "to": to,
        "from_number": "+34900000000",
        "template_name": "order_update",
        "language": "en_US",
        "variables": {"1": "Ana", "2": "A-17"},
    }
    values.update(fields)
    return OutboundMessage(**values)


def sandbox_provider(
    sandbox: SandboxServer, client: httpx.Client, account_id: str = ACCOUNT, *, timeout_s: float = 5.0
) -> MetaCloudProvider:
    # What ProviderFactory builds for a sandbox account.
    return MetaCloudProvider(sandbox.url, "v21.0", account_id, "sandbox", client, timeout_s, provider_name="sandbox")


def outcome(provider: MetaCloudProvider, msg: OutboundMessage) -> SendReceipt | ProviderError:
    try:
        return provider.send(msg)
    except ProviderError as error:
        return error


# -- the Meta adapter against the sandbox -----------------------------------------------------------------------------
def test_an_accepted_message_is_recorded_with_its_parameters(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN the Meta adapter pointed at the sandbox
    provider = sandbox_provider(sandbox, http_client)

    # WHEN a message with positional variables is sent
    receipt = provider.send(message())

    # THEN GET /messages lists it under the account id with what was sent
    listed = http_client.get(f"{sandbox.url}/messages").json()["messages"]
    assert len(listed) == 1
    record = listed[0]
    assert record["id"] == receipt.provider_message_id
    assert record["id"].startswith("wamid.")
    assert record["to"] == "34600000001"
    assert record["phoneNumberId"] == ACCOUNT
    assert record["template"] == "order_update"
    assert record["language"] == "en_US"
    assert record["parameters"] == [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-17"}]
    assert record["variables"] == {"1": "Ana", "2": "A-17"}
    assert record["receivedAt"].endswith("Z")


def test_named_variables_reach_the_sandbox_by_name(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN a template with named variables
    provider = sandbox_provider(sandbox, http_client)

    # WHEN it is sent
    provider.send(message(variables={"first_name": "Ana", "order_id": "A-17"}))

    # THEN the sandbox recorded the names
    (record,) = sandbox.messages()
    assert record["variables"] == {"first_name": "Ana", "order_id": "A-17"}


def test_a_recipient_that_is_not_digits_is_undeliverable(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN a recipient that is not a phone number
    provider = sandbox_provider(sandbox, http_client)

    # WHEN it is sent
    error = outcome(provider, message(to="+34 600-abc"))

    # THEN the sandbox answers Meta's 131026, a permanent failure, and records nothing
    assert isinstance(error, ProviderError)
    assert (error.code, error.http_status, error.error_class) == ("131026", 400, ErrorClass.PERMANENT)
    assert sandbox.messages() == []


def test_scripted_recipients_fail_as_configured(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN one recipient opted out and one whose sends pause the queue
    sandbox.configure(recipient_errors={"34600000002": 131050, "34600000003": 131048})
    provider = sandbox_provider(sandbox, http_client)

    # WHEN messages go to them and to a normal recipient
    opted_out = outcome(provider, message(to="+34600000002"))
    spam = outcome(provider, message(to="+34600000003"))
    fine = outcome(provider, message(to="+34600000004"))

    # THEN the classes follow the Meta table and only the normal one is recorded
    assert isinstance(opted_out, ProviderError)
    assert opted_out.error_class is ErrorClass.OPTED_OUT_MARKETING
    assert isinstance(spam, ProviderError)
    assert spam.error_class is ErrorClass.PAUSE_QUEUE
    assert isinstance(fine, SendReceipt)
    assert [record["to"] for record in sandbox.messages()] == ["34600000004"]


def test_failure_rate_one_gives_retryable_500s(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN every send failing
    sandbox.configure(failure_rate=1.0)

    # WHEN a message is sent
    error = outcome(sandbox_provider(sandbox, http_client), message())

    # THEN it is Meta's 131000 with a 500: retryable; nothing recorded
    assert isinstance(error, ProviderError)
    assert (error.code, error.http_status, error.error_class) == ("131000", 500, ErrorClass.RETRYABLE)
    assert sandbox.messages() == []


def test_rate_429_one_gives_retryable_rate_limits(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN every send rate limited
    sandbox.configure(rate_429=1.0)

    # WHEN a message is sent
    error = outcome(sandbox_provider(sandbox, http_client), message())

    # THEN it is 429 with code 130429: retryable
    assert isinstance(error, ProviderError)
    assert (error.code, error.http_status, error.error_class) == ("130429", 429, ErrorClass.RETRYABLE)


def test_a_wrong_token_pauses_the_queue(http_client: httpx.Client) -> None:
    # GIVEN a sandbox that requires a specific token
    with SandboxServer(access_token="expected-token") as sandbox:
        # WHEN the adapter sends with another token
        error = outcome(sandbox_provider(sandbox, http_client), message())

    # THEN it is Meta's 190 with a 401: the queue pauses
    assert isinstance(error, ProviderError)
    assert (error.code, error.http_status, error.error_class) == ("190", 401, ErrorClass.PAUSE_QUEUE)


def test_latency_beyond_the_timeout_is_an_unknown_outcome_yet_the_message_was_accepted(
    http_client: httpx.Client,
) -> None:
    # GIVEN a sandbox that answers after 2 s and a client that waits 0.3 s
    with SandboxServer(latency_ms=2000) as sandbox:
        provider = sandbox_provider(sandbox, http_client, timeout_s=0.3)

        # WHEN a message is sent
        error = outcome(provider, message())

        # THEN the sender sees an unknown outcome, and indeed the sandbox accepted the message
        assert isinstance(error, ProviderError)
        assert (error.code, error.error_class) == ("READ_TIMEOUT", ErrorClass.UNKNOWN_OUTCOME)
        assert len(sandbox.messages()) == 1


# -- the sandbox's own HTTP surface --------------------------------------------------------------------------------
def test_health_config_and_stats_answer(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN a running sandbox
    # WHEN its inspection routes are called
    health = http_client.get(f"{sandbox.url}/health")
    config = http_client.get(f"{sandbox.url}/config")
    stats = http_client.get(f"{sandbox.url}/stats")

    # THEN they answer JSON
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert config.json()["failureRate"] == 0.0
    assert config.json()["callbackUrl"] is None
    assert stats.json()["accepted"] == 0


def test_settings_change_at_runtime_through_post_config(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN a healthy sandbox
    provider = sandbox_provider(sandbox, http_client)
    assert isinstance(outcome(provider, message()), SendReceipt)

    # WHEN failures are switched on over HTTP
    changed = http_client.post(f"{sandbox.url}/config", json={"failureRate": 1.0, "failureCode": 1})
    failed = outcome(provider, message())

    # THEN the new setting is reported and applies to the next send
    assert changed.status_code == 200
    assert changed.json()["failureRate"] == 1.0
    assert isinstance(failed, ProviderError)
    assert (failed.code, failed.error_class) == ("1", ErrorClass.RETRYABLE)

    # WHEN they are switched off again
    http_client.post(f"{sandbox.url}/config", json={"failureRate": 0})

    # THEN sends succeed again
    assert isinstance(outcome(provider, message()), SendReceipt)


@pytest.mark.parametrize(
    "payload",
    [{"failureRate": 2}, {"nope": 1}, {"throughputPerNumber": -1}, ["failureRate"], {"seed": 1.5}],
)
def test_invalid_settings_are_refused_and_change_nothing(
    sandbox: SandboxServer, http_client: httpx.Client, payload: Any
) -> None:
    # GIVEN a sandbox with default settings
    # WHEN an invalid setting is posted
    response = http_client.post(f"{sandbox.url}/config", json=payload)

    # THEN it is a 400 with a reason, and the settings are unchanged
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert sandbox.config.failure_rate == 0.0
    assert sandbox.config.throughput_per_number is None


def test_messages_can_be_filtered_by_phone_number_id_and_reset(
    sandbox: SandboxServer, http_client: httpx.Client
) -> None:
    # GIVEN messages from two accounts
    sandbox_provider(sandbox, http_client, "acc_A").send(message())
    sandbox_provider(sandbox, http_client, "acc_B").send(message())
    sandbox_provider(sandbox, http_client, "acc_B").send(message(to="+34600000009"))

    # WHEN listed with a filter
    only_b = http_client.get(f"{sandbox.url}/messages", params={"phoneNumberId": "acc_B"}).json()["messages"]

    # THEN only that account's are listed
    assert [record["to"] for record in only_b] == ["34600000001", "34600000009"]

    # WHEN the messages are deleted
    deleted = http_client.delete(f"{sandbox.url}/messages")

    # THEN the list and the counters are empty
    assert deleted.status_code == 200
    assert http_client.get(f"{sandbox.url}/messages").json() == {"messages": []}
    assert sandbox.stats()["accepted"] == 0


def test_throughput_per_number_rejects_the_excess_with_429(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN one message per 5 s per number (a window far longer than the burst)
    sandbox.configure(throughput_per_number=0.2)
    first_number = sandbox_provider(sandbox, http_client, "acc_A")
    second_number = sandbox_provider(sandbox, http_client, "acc_B")

    # WHEN a burst of 4 goes from one number, then one from another
    results = [outcome(first_number, message()) for _ in range(4)]
    other = outcome(second_number, message())

    # THEN the first is accepted, the rest rate limited (retryable 130429), and the other number is unaffected
    assert isinstance(results[0], SendReceipt)
    limited = results[1:]
    assert all(isinstance(error, ProviderError) for error in limited)
    assert {
        (error.code, error.http_status, error.error_class) for error in limited if isinstance(error, ProviderError)
    } == {("130429", 429, ErrorClass.RETRYABLE)}
    assert isinstance(other, SendReceipt)
    assert len(sandbox.messages("acc_A")) == 1
    assert sandbox.stats()["throttled"] == 3


def test_latency_delays_every_answer(http_client: httpx.Client) -> None:
    # GIVEN a sandbox with 150 ms latency plus up to 50 ms jitter
    with SandboxServer(latency_ms=150, jitter_ms=50, seed=3) as sandbox:
        provider = sandbox_provider(sandbox, http_client)

        # WHEN three messages are sent one after the other
        started = time.monotonic()
        for _ in range(3):
            provider.send(message())
        elapsed = time.monotonic() - started

    # THEN each waited at least the fixed latency (upper bound kept generous)
    assert 0.45 <= elapsed < 10


def test_a_seeded_failure_rate_mixes_outcomes_reproducibly(http_client: httpx.Client) -> None:
    # GIVEN two sandboxes with the same seed and a 50 % failure rate
    runs = []
    for _ in range(2):
        with SandboxServer(failure_rate=0.5, seed=11) as sandbox:
            provider = sandbox_provider(sandbox, http_client)
            # WHEN the same 20 sends go to each
            results = [outcome(provider, message()) for _ in range(20)]
            runs.append([isinstance(result, SendReceipt) for result in results])
            # THEN only the accepted ones are recorded
            assert len(sandbox.messages()) == sum(runs[-1])

    # THEN both runs fail the same sends, and both outcomes occur
    assert runs[0] == runs[1]
    assert set(runs[0]) == {True, False}


def test_malformed_requests_get_meta_errors(sandbox: SandboxServer, http_client: httpx.Client) -> None:
    # GIVEN a running sandbox
    url = f"{sandbox.url}/v21.0/{ACCOUNT}/messages"
    auth = {"Authorization": "Bearer sandbox"}

    # WHEN a body that is not JSON, an unauthenticated send and an unknown path are tried
    not_json = http_client.post(url, content=b"{nope", headers={**auth, "Content-Type": "application/json"})
    anonymous = http_client.post(url, json={"messaging_product": "whatsapp"})
    unknown = http_client.post(f"{sandbox.url}/v21.0/{ACCOUNT}/media", json={}, headers=auth)

    # THEN each is a Meta-shaped error and nothing is recorded
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, 100)
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, 190)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "OAuthException"
    assert sandbox.messages() == []
    assert sandbox.stats()["rejected"] == 2


def test_concurrent_sends_are_all_counted(sandbox: SandboxServer) -> None:
    # GIVEN several threads with their own clients sending at once
    import threading

    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            with httpx.Client() as client:
                provider = sandbox_provider(sandbox, client, f"acc_{index % 3}")
                for _ in range(10):
                    provider.send(message())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(6)]

    # WHEN they all finish
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # THEN every message was accepted, recorded once, with distinct ids
    assert errors == []
    records = sandbox.messages()
    assert len(records) == 60
    assert len({record["id"] for record in records}) == 60
    assert sandbox.stats()["accepted"] == 60


def test_on_accepted_hook_sees_each_accepted_message(http_client: httpx.Client) -> None:
    # GIVEN an embedding process observing accepted messages
    seen: list[dict[str, Any]] = []
    with SandboxServer(on_accepted=seen.append, recipient_errors={"34600000002": 131026}) as sandbox:
        provider = sandbox_provider(sandbox, http_client)

        # WHEN one message is accepted and one refused
        provider.send(message())
        outcome(provider, message(to="+34600000002"))

    # THEN the hook saw only the accepted one
    assert [record["to"] for record in seen] == ["34600000001"]


def test_header_and_button_parameters_are_accepted_and_a_broken_button_is_refused(
    sandbox: SandboxServer, http_client: httpx.Client
) -> None:
    # GIVEN a template with an image header and a quick-reply and a URL button
    from wabacast.domain.models import TemplateButton, TemplateHeader

    provider = sandbox_provider(sandbox, http_client)
    header = TemplateHeader.model_validate({"type": "image", "link": "https://cdn.example.com/spring.png"})
    buttons = (
        TemplateButton.model_validate({"subType": "quick_reply", "index": 0, "payload": "MORE"}),
        TemplateButton.model_validate({"subType": "url", "index": 1, "urlSuffix": "spring"}),
    )
    # WHEN it is sent through the Meta adapter
    sent = outcome(provider, message(header=header, buttons=buttons))
    # THEN the sandbox (validating Meta's component shapes) accepts it
    assert isinstance(sent, SendReceipt)
    # AND a button parameter of the wrong type is refused as Meta does (132000, permanent)
    response = http_client.post(
        f"{sandbox.url}/v21.0/{ACCOUNT}/messages",
        headers={"Authorization": "Bearer sandbox"},
        json={
            "messaging_product": "whatsapp",
            "to": "34600000001",
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "en_US"},
                "components": [
                    {
                        "type": "button",
                        "sub_type": "url",
                        "index": "0",
                        "parameters": [{"type": "payload", "payload": "x"}],
                    }
                ],
            },
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 132000
