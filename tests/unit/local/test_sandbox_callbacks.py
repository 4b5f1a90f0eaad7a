"""The sandbox's status callbacks: Meta's payload shape and signature, and the chaos plan, with injected clock and
random source (no network, no threads)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wabacast.domain.receipts import ReceiptStatus
from wabacast.providers.webhooks import MetaNotification, meta_receipt, meta_signature_valid
from wabacast_local.cli import parse_args
from wabacast_local.sandbox import SandboxConfig, SandboxConfigError
from wabacast_local.sandbox_callbacks import (
    CallbackChaos,
    CallbackDispatcher,
    CallbackPlan,
    CallbackTarget,
    PlannedCallback,
    plan_callbacks,
    sign,
    status_notification,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "meta"
MESSAGE = {
    "id": "wamid.SBX0000000000000000000001",
    "to": "34612300001",
    "phoneNumberId": "acc_1",
    "callbackData": "q_1/job_1",
}


def _keys(value: Any) -> Any:
    """The shape of a JSON value: its keys, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {key: _keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return type(value).__name__


@pytest.mark.parametrize("status", ["sent", "delivered", "read"])
def test_a_status_notification_has_the_shape_of_metas_documented_payload(status: str) -> None:
    # GIVEN Meta's documented payload for that status (tests/fixtures)
    documented = json.loads((FIXTURES / f"status_{status}.json").read_text())
    # WHEN the sandbox builds its own
    built = status_notification(MESSAGE, status, 1_764_406_800)
    # THEN it has the same fields at every level, the message's ids and the reference the send gave
    assert _keys(built) == _keys(documented)
    value = built["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == "acc_1"
    assert value["statuses"][0]["id"] == MESSAGE["id"]
    assert value["statuses"][0]["recipient_id"] == "34612300001"
    assert value["statuses"][0]["biz_opaque_callback_data"] == "q_1/job_1"
    assert value["statuses"][0]["timestamp"] == "1764406800"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("sent", ReceiptStatus.SENT), ("delivered", ReceiptStatus.DELIVERED), ("read", ReceiptStatus.READ)],
)
def test_the_webhook_parses_a_signed_sandbox_notification_into_its_receipt(
    status: str, expected: ReceiptStatus
) -> None:
    # GIVEN a notification signed with the stack's app secret
    raw = json.dumps(status_notification(MESSAGE, status, 1_764_406_800)).encode()
    header = sign(raw, "stack-secret")
    # THEN the webhook's own check accepts it, and refuses another secret or a changed byte
    assert meta_signature_valid(raw, header, "stack-secret")
    assert not meta_signature_valid(raw, header, "other-secret")
    assert not meta_signature_valid(raw.replace(b"34612300001", b"34612300002"), header, "stack-secret")
    # AND the webhook's model reads the receipt the sandbox meant
    notification = MetaNotification.model_validate_json(raw)
    statuses = notification.entry[0].changes[0].value.statuses
    receipt = meta_receipt(statuses[0], datetime.now(UTC))
    assert receipt is not None
    assert (receipt.status, receipt.provider_message_id) == (expected, MESSAGE["id"])
    assert receipt.at == datetime.fromtimestamp(1_764_406_800, UTC)
    assert statuses[0].biz_opaque_callback_data == "q_1/job_1"


class ScriptedRandom(random.Random):
    """random() answers from a script; uniform() returns the middle of its range."""

    def __init__(self, draws: list[float]) -> None:
        super().__init__(0)
        self._draws = list(draws)

    def random(self) -> float:
        return self._draws.pop(0)

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


CHAOS = CallbackChaos(
    sent_delay_ms=(100, 100),
    delivered_delay_ms=(1000, 1000),
    read_delay_ms=(2000, 2000),
    read_rate=0.5,
    loss_rate=0.1,
    duplicate_rate=0.1,
    reorder_rate=0.1,
)


def test_a_read_message_gets_sent_delivered_then_read_after_the_answer() -> None:
    # GIVEN draws: read (0.4 < 0.5), not reordered, and no loss or duplicate for any status
    draws = ScriptedRandom([0.4, 0.9, *[0.9, 0.9] * 3])
    # WHEN the plan is made for a send answered after 50 ms
    plan = plan_callbacks(CHAOS, draws, answer_delay_s=0.05)
    # THEN sent after the answer, delivered 1 s after sent, read 2 s after delivered
    assert plan == CallbackPlan(
        posts=[
            PlannedCallback("sent", pytest.approx(0.15)),
            PlannedCallback("delivered", pytest.approx(1.15)),
            PlannedCallback("read", pytest.approx(3.15)),
        ],
        lost=[],
    )


def test_an_unread_message_gets_no_read() -> None:
    plan = plan_callbacks(CHAOS, ScriptedRandom([0.6, *[0.9, 0.9] * 2]))
    assert [post.status for post in plan.posts] == ["sent", "delivered"]


def test_reordering_posts_read_before_delivered() -> None:
    # GIVEN a read message whose read is reordered (0.05 < 0.1)
    plan = plan_callbacks(CHAOS, ScriptedRandom([0.4, 0.05, *[0.9, 0.9] * 3]))
    # THEN read comes where delivered would have been, delivered after it
    assert [(post.status, round(post.delay_s, 3)) for post in plan.posts] == [
        ("sent", 0.1),
        ("read", 1.1),
        ("delivered", 3.1),
    ]


def test_loss_drops_a_status_and_duplication_posts_one_twice() -> None:
    # GIVEN sent lost (0.05 < 0.1), delivered kept and duplicated, read kept once
    draws = ScriptedRandom([0.4, 0.9, 0.05, 0.9, 0.05, 0.9, 0.9])
    # WHEN planned
    plan = plan_callbacks(CHAOS, draws)
    # THEN
    assert plan.lost == ["sent"]
    assert [(post.status, post.duplicate) for post in plan.posts] == [
        ("delivered", False),
        ("delivered", True),
        ("read", False),
    ]


def test_gentle_defaults_plan_every_status_once_and_in_order() -> None:
    # GIVEN the default chaos over many messages
    draws = random.Random(7)
    plans = [plan_callbacks(CallbackChaos(), draws) for _ in range(1000)]
    # THEN nothing is lost, duplicated or reordered, and about 60 % are read
    assert all(not plan.lost for plan in plans)
    statuses = [[post.status for post in plan.posts] for plan in plans]
    assert {tuple(s) for s in statuses} == {("sent", "delivered"), ("sent", "delivered", "read")}
    read = sum(1 for s in statuses if "read" in s)
    assert 500 < read < 700


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_dispatcher_posts_each_callback_when_due_signed_and_logs_the_answer() -> None:
    # GIVEN a dispatcher with an injected clock and a recording poster that refuses the first read
    clock = ManualClock()
    posted: list[tuple[str, bytes, dict[str, str]]] = []
    answers = iter([(200, "{}"), (200, "{}"), (500, "boom"), (200, "{}")])

    def post(url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        posted.append((url, raw, headers))
        return next(answers)

    dispatcher = CallbackDispatcher(clock=clock, wall_clock=lambda: 1_764_406_800.0, post=post, max_batch=1)
    plan = CallbackPlan(
        posts=[PlannedCallback("sent", 0.1), PlannedCallback("delivered", 1.0), PlannedCallback("read", 2.0)],
        lost=["read"],
    )
    dispatcher.schedule(MESSAGE, plan, CallbackTarget("http://api/api/webhooks/meta", "secret"))
    # WHEN time passes
    assert dispatcher.run_due() == 0
    clock.now = 1.0
    assert dispatcher.run_due() == 2
    clock.now = 2.0
    assert dispatcher.run_due() == 1  # refused: tried again later
    clock.now = 3.5
    assert dispatcher.run_due() == 1
    # THEN each body is signed with the target's secret and carries its status
    assert [json.loads(raw)["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] for _, raw, _ in posted] == [
        "sent",
        "delivered",
        "read",
        "read",
    ]
    assert all(meta_signature_valid(raw, headers["X-Hub-Signature-256"], "secret") for _, raw, headers in posted)
    # AND the log and summary say what happened
    summary = dispatcher.summary()
    assert summary == {
        "scheduled": 3,
        "posted": 4,
        "requests": 4,
        "acknowledged": 3,
        "refused": 1,
        "unreachable": 0,
        "retried": 1,
        "lost": 1,
        "droppedAtStop": 0,
        "pending": 0,
    }
    outcomes = [(entry["status"], entry["outcome"]) for entry in dispatcher.log(MESSAGE["id"])]
    assert outcomes == [
        ("read", "lost"),
        ("sent", "acknowledged"),
        ("delivered", "acknowledged"),
        ("read", "refused"),
        ("read", "acknowledged"),
    ]


def test_stopping_drops_what_is_not_due_and_plans_nothing_more() -> None:
    clock = ManualClock()
    dispatcher = CallbackDispatcher(clock=clock, post=lambda url, raw, headers: (200, ""))
    target = CallbackTarget("http://api", "secret")
    dispatcher.schedule(MESSAGE, CallbackPlan([PlannedCallback("sent", 5.0)], []), target)
    dispatcher.stop()
    dispatcher.schedule(MESSAGE, CallbackPlan([PlannedCallback("sent", 0.0)], []), target)
    assert dispatcher.summary()["droppedAtStop"] == 1
    assert dispatcher.pending() == 0


def test_callback_settings_are_checked() -> None:
    with pytest.raises(SandboxConfigError, match="read_rate"):
        SandboxConfig(read_rate=1.5)
    with pytest.raises(SandboxConfigError, match="delivered_delay_ms"):
        SandboxConfig(delivered_delay_ms=(500.0, 100.0))
    config = SandboxConfig().updated({"readDelayMs": [10, 20], "callbackLossRate": 0.2})
    assert config.callback_chaos().read_delay_ms == (10.0, 20.0)
    assert config.callback_chaos().loss_rate == 0.2
    assert config.callback_target() is None
    assert config.updated({"callbackUrl": "http://x", "appSecret": "s"}).callback_target() == CallbackTarget(
        "http://x", "s"
    )


def test_the_cli_reads_callback_ranges_and_shares() -> None:
    # GIVEN callback settings on the command line
    args = parse_args(["--sandbox-delivered-delay-ms", "100-600", "--sandbox-callback-loss-rate", "0.05"])
    # THEN the range and share are read, the rest keep their gentle defaults
    assert args.sandbox_delivered_delay_ms == (100.0, 600.0)
    assert args.sandbox_callback_loss_rate == 0.05
    assert args.sandbox_read_delay_ms == (1000.0, 5000.0)
    assert (args.sandbox_callback_duplicate_rate, args.sandbox_callback_reorder_rate) == (0.0, 0.0)
    # AND a reversed range is refused
    with pytest.raises(SystemExit):
        parse_args(["--sandbox-read-delay-ms", "900-100"])


def test_statuses_of_one_number_due_together_share_a_notification() -> None:
    # GIVEN 30 messages of one number and one of another, all with a sent status due at 0.1 s
    clock = ManualClock()
    posted: list[tuple[str, bytes, dict[str, str]]] = []

    def post(url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        posted.append((url, raw, headers))
        return 200, "{}"

    dispatcher = CallbackDispatcher(clock=clock, wall_clock=lambda: 1_764_406_800.0, post=post)
    target = CallbackTarget("http://api/api/webhooks/meta", "secret")
    plan = CallbackPlan(posts=[PlannedCallback("sent", 0.1)], lost=[])
    for index in range(30):
        dispatcher.schedule({**MESSAGE, "id": f"wamid.{index}"}, plan, target)
    dispatcher.schedule({**MESSAGE, "id": "wamid.other", "phoneNumberId": "other-number"}, plan, target)

    # WHEN they fall due
    clock.now = 1.0
    assert dispatcher.run_due() == 31

    # THEN they went out in three signed notifications: 25 and 5 statuses of the first number, 1 of the other, each
    # status exactly once
    bodies = [json.loads(raw) for _, raw, _ in posted]
    sizes = sorted(len(body["entry"][0]["changes"][0]["value"]["statuses"]) for body in bodies)
    assert sizes == [1, 5, 25]
    for body in bodies:
        value = body["entry"][0]["changes"][0]["value"]
        assert value["metadata"]["phone_number_id"] in {MESSAGE["phoneNumberId"], "other-number"}
    ids = [status["id"] for body in bodies for status in body["entry"][0]["changes"][0]["value"]["statuses"]]
    assert sorted(ids) == sorted([f"wamid.{index}" for index in range(30)] + ["wamid.other"])
    assert all(meta_signature_valid(raw, headers["X-Hub-Signature-256"], "secret") for _, raw, headers in posted)
    assert dispatcher.summary()["requests"] == 3
    assert dispatcher.summary()["acknowledged"] == 31
