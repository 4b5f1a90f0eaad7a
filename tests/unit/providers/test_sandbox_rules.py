"""The sandbox's rules without HTTP: body validation like Meta's, settings, throughput and seeded chaos."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wabacast_local.sandbox import SandboxConfig, SandboxConfigError, SandboxState, validate_send_body

AUTH = "Bearer sandbox"


def body(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "34600000001",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
        },
    }
    value.update(overrides)
    return value


def template(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"name": "order_update", "language": {"code": "en_US"}}
    value.update(overrides)
    return value


def send(state: SandboxState, payload: Any = None, phone_number_id: str = "acc_1", authorization: str = AUTH) -> Any:
    raw = json.dumps(body() if payload is None else payload).encode()
    return state.handle_send("v21.0", phone_number_id, authorization, raw)


def test_a_well_formed_template_send_is_valid() -> None:
    # GIVEN bodies as the Meta adapter builds them (with and without variables, named ones, "+" kept)
    # WHEN validated
    # THEN none has a problem
    assert validate_send_body(body()) is None
    assert validate_send_body(body(template=template())) is None
    assert validate_send_body(body(to="+34600000001")) is None
    named = [{"type": "text", "parameter_name": "first_name", "text": "Ana"}]
    assert validate_send_body(body(template=template(components=[{"type": "body", "parameters": named}]))) is None


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([], 100),
        (body(messaging_product="sms"), 100),
        ({k: v for k, v in body().items() if k != "messaging_product"}, 100),
        (body(recipient_type="group"), 100),
        ({k: v for k, v in body().items() if k != "to"}, 100),
        (body(to="34-600-000-001"), 131026),
        (body(to="abc"), 131026),
        (body(to=34600000001), 131026),
        (body(to="123"), 131026),
        ({k: v for k, v in body().items() if k != "type"}, 100),
        (body(type="text"), 131051),
        (body(template="order_update"), 100),
        (body(template=template(name="")), 100),
        (body(template=template(name="Order Update")), 132001),
        (body(template=template(language="en_US")), 100),
        (body(template=template(language={"code": "english"})), 100),
        (body(template=template(components={"type": "body"})), 100),
        (body(template=template(components=[{"type": "footer"}])), 100),
        (body(template=template(components=[{"type": "body", "parameters": "Ana"}])), 100),
        (body(template=template(components=[{"type": "body", "parameters": [{"type": "image"}]}])), 100),
        (body(template=template(components=[{"type": "body", "parameters": [{"type": "text"}]}])), 131008),
        (body(template=template(components=[{"type": "body", "parameters": [{"type": "text", "text": " "}]}])), 131009),
        (
            body(template=template(components=[{"type": "body", "parameters": [
                {"type": "text", "text": "a", "parameter_name": "x"}, {"type": "text", "text": "b"}]}])),
            100,
        ),
        (
            body(template=template(components=[{"type": "body", "parameters": [
                {"type": "text", "text": "a", "parameter_name": "bad name"}]}])),
            100,
        ),
    ],
)  # fmt: skip
def test_malformed_bodies_get_the_code_meta_would_answer(payload: Any, code: int) -> None:
    # GIVEN a malformed send body
    # WHEN validated
    problem = validate_send_body(payload)

    # THEN the Meta error code matches, with a human explanation
    assert problem is not None
    assert problem[0] == code
    assert problem[1]


def test_settings_are_checked() -> None:
    # GIVEN impossible settings
    # WHEN a config is made from them
    # THEN each is refused with a reason
    for bad in (
        {"failure_rate": 1.5},
        {"rate_429": -0.1},
        {"failure_rate": 0.6, "rate_429": 0.6},
        {"latency_ms": "fast"},
        {"throughput_per_number": 0},
        {"seed": "x"},
        {"recipient_errors": {"34600000001": "opted out"}},
        {"callback_url": ""},
    ):
        with pytest.raises(SandboxConfigError):
            SandboxConfig(**bad)
    with pytest.raises(SandboxConfigError, match="unknown setting"):
        SandboxConfig().updated({"latency": 5})


def test_updates_take_camel_case_keys_and_keep_the_rest() -> None:
    # GIVEN a config
    config = SandboxConfig(latency_ms=10, seed=1)

    # WHEN updated with POST /config style keys
    updated = config.updated({"failureRate": 0.25, "rate429": 0.1, "recipientErrors": {"+34600000001": 131050}})

    # THEN those change, the others stay, and recipients are kept as digits
    assert (updated.failure_rate, updated.rate_429, updated.latency_ms, updated.seed) == (0.25, 0.1, 10, 1)
    assert updated.recipient_errors == {"34600000001": 131050}
    assert updated.to_json()["failureRate"] == 0.25


def test_the_access_token_is_not_shown_in_the_config() -> None:
    # GIVEN a required token
    # WHEN the config is shown
    # THEN the token is masked
    assert SandboxConfig(access_token="s3cret").to_json()["accessToken"] == "***"


def test_throughput_is_per_phone_number_and_rejections_do_not_use_it_up() -> None:
    # GIVEN one message per 10 s per number (a window far longer than this test)
    state = SandboxState(SandboxConfig(throughput_per_number=0.1))

    # WHEN three messages go from one number and one from another
    outcomes = [send(state).status for _ in range(3)]
    other = send(state, phone_number_id="acc_2").status

    # THEN the first is accepted, the others get 429, and the other number is not affected
    assert outcomes == [200, 429, 429]
    assert other == 200
    assert state.stats()["throttled"] == 2
    assert [message["phoneNumberId"] for message in state.messages()] == ["acc_1", "acc_2"]


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("rate", "burst_accepted", "window_s"), [(5, 5, 1.0), (80, 80, 1.0), (0.5, 1, 2.0)])
def test_throughput_allows_the_rate_per_window_then_frees_up(rate: float, burst_accepted: int, window_s: float) -> None:
    # GIVEN a sandbox limited to `rate` messages/s per number, on a clock that only moves when told
    clock = ManualClock()
    state = SandboxState(SandboxConfig(throughput_per_number=rate), clock=clock)

    # WHEN a burst twice the allowance arrives at one instant
    burst = [send(state).status for _ in range(burst_accepted * 2)]

    # THEN exactly the allowance is accepted and the rest is rate limited
    assert burst.count(200) == burst_accepted
    assert burst.count(429) == burst_accepted

    # WHEN just under a window has passed
    clock.now += window_s - 0.01
    # THEN still nothing is accepted
    assert send(state).status == 429

    # WHEN the window has passed
    clock.now += 0.02
    # THEN a full allowance is available again
    assert [send(state).status for _ in range(burst_accepted)] == [200] * burst_accepted
    assert send(state).status == 429


def test_injected_failures_do_not_use_up_throughput() -> None:
    # GIVEN one message per window and every send failing by injection
    clock = ManualClock()
    state = SandboxState(SandboxConfig(throughput_per_number=1, failure_rate=1.0), clock=clock)
    assert [send(state).status for _ in range(3)] == [500, 500, 500]

    # WHEN failures are switched off at the same instant
    state.configure({"failureRate": 0})

    # THEN the slot is still free
    assert send(state).status == 200


def test_the_same_seed_gives_the_same_outcomes() -> None:
    # GIVEN two sandboxes with the same seed and half of the sends failing
    config = SandboxConfig(failure_rate=0.3, rate_429=0.2, seed=42, jitter_ms=5)
    first, second = SandboxState(config), SandboxState(config)

    # WHEN the same sends go to both
    a = [(o.status, o.delay_s, o.body.get("messages", [{}])[0].get("id")) for o in (send(first) for _ in range(40))]
    b = [(o.status, o.delay_s, o.body.get("messages", [{}])[0].get("id")) for o in (send(second) for _ in range(40))]

    # THEN they answer identically, and the mix has every outcome
    assert a == b
    assert {status for status, _, _ in a} == {200, 429, 500}


def test_reseeding_at_runtime_restarts_the_sequence() -> None:
    # GIVEN a seeded sandbox that already answered some sends
    state = SandboxState(SandboxConfig(failure_rate=0.5, seed=7))
    first = [send(state).status for _ in range(20)]

    # WHEN the same seed is set again and the sends are repeated
    state.configure({"seed": 7})
    again = [send(state).status for _ in range(20)]

    # THEN the outcomes repeat
    assert again == first


def test_only_accepted_messages_are_recorded_with_their_variables() -> None:
    # GIVEN a sandbox where one recipient always fails, and a bad body
    state = SandboxState(SandboxConfig(recipient_errors={"34600000002": 131050}))

    # WHEN a good send, a scripted failure, an invalid body and an unauthenticated send are made
    ok = send(state)
    opted_out = send(state, body(to="34600000002"))
    invalid = send(state, body(to="letters"))
    anonymous = send(state, authorization="")

    # THEN only the good one is recorded; the others carry Meta errors
    assert ok.status == 200
    assert (opted_out.status, opted_out.body["error"]["code"]) == (400, 131050)
    assert (invalid.status, invalid.body["error"]["code"]) == (400, 131026)
    assert (anonymous.status, anonymous.body["error"]["code"]) == (401, 190)
    (record,) = state.messages()
    assert record["id"] == ok.body["messages"][0]["id"]
    assert record["variables"] == {"1": "Ana"}
    assert record["template"] == "order_update"
    assert record["language"] == "en_US"
    assert state.stats()["rejectedByCode"] == {"131050": 1, "131026": 1, "190": 1}
