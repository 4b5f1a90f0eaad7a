"""The messaging limit's store: unique recipients over a rolling 24 h, with an injected clock. Every test runs on the
DynamoDB adapter (on moto) and on the fake the planner and sender tests use, so the fake keeps the adapter's rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from tests.unit.delivery_fakes import FakeRates
from tests.unit.fakes import phone
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.ratelimit import GCRA_SK, RateLimiter
from wabacast.domain.delivery import Reservation
from wabacast.domain.messaging_limit import BUCKET_S, WINDOW_S, bucket_expiry, bucket_of, recipient_limit
from wabacast.domain.models import MessagingTier
from wabacast.logic.delivery_ports import RatePort
from wabacast.storage.table import PARTITION_KEY, SORT_KEY, create_table_request

ACCOUNT = "acc_limit"
TIER_250 = recipient_limit(MessagingTier.TIER_250, 1_000_000)
# 100 s into a bucket: a batch's last slot plus the send margin stays in the same bucket.
T0 = 1_800_000_000 - 1_800_000_000 % BUCKET_S + 100.0
HOUR = 3600.0


@pytest.fixture(params=["fake", "dynamodb"])
def rates(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[RatePort]:
    if request.param == "fake":
        yield FakeRates()
        return
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**create_table_request("limits"))
        yield RateLimiter(TableGateway(client, "limits"))


def _send(rates: RatePort, recipients: list[str], now: float, limit: int = TIER_250) -> Reservation:
    """A sender's batch: reserve, then record the windows of the new recipients its messages went to."""
    reservation = rates.reserve(
        ACCOUNT, recipients, messages_per_second=1000, recipient_limit=limit, now=now, max_wait_s=20.0
    )
    sent = [recipients[index] for index in reservation.granted if recipients[index] in reservation.opened]
    if sent:
        rates.record_windows(ACCOUNT, sent, opened_at=now)
    return reservation


def _numbers(start: int, count: int) -> list[str]:
    return [phone(start + index) for index in range(count)]


def test_the_251st_recipient_of_a_250_tier_waits_until_the_first_slot_s_24_h_pass(rates: RatePort) -> None:
    # GIVEN a 250-tier account that messaged 10 recipients at T0 and 240 more two hours later, in batches of 10
    _send(rates, _numbers(1, 10), T0)
    for batch in range(24):
        assert len(_send(rates, _numbers(100 + batch * 10, 10), T0 + 2 * HOUR).granted) == 10
    # WHEN a 251st recipient comes 24 h after T0
    held = _send(rates, [phone(9_000)], T0 + WINDOW_S)
    # THEN it is held by the limit, and room returns when T0's bucket is 24 h old
    assert (held.granted, held.slots, held.limit_reached) == ((), [], True)
    usage = rates.usage(ACCOUNT, TIER_250, T0 + WINDOW_S)
    assert (usage.used, usage.remaining) == (250, 0)
    assert usage.resets_at == bucket_expiry(bucket_of(T0)) == T0 - 100 + BUCKET_S + WINDOW_S
    # AND at that moment it goes, with room for 9 more
    assert usage.resets_at is not None
    granted = _send(rates, [phone(9_000)], usage.resets_at)
    assert (granted.granted, granted.limit_reached, granted.opened) == ((0,), False, frozenset({phone(9_000)}))
    assert rates.usage(ACCOUNT, TIER_250, usage.resets_at).used == 241


def test_a_recipient_messaged_again_within_24_h_is_not_counted_again(rates: RatePort) -> None:
    # GIVEN a recipient messaged at T0
    _send(rates, [phone(1)], T0)
    # WHEN it is messaged again 23 h later, in a batch with a new recipient listed twice
    again = _send(rates, [phone(1), phone(2), phone(2)], T0 + 23 * HOUR)
    # THEN only the new recipient counts, once
    assert again.granted == (0, 1, 2)
    assert again.opened == frozenset({phone(2)})
    assert rates.usage(ACCOUNT, TIER_250, T0 + 23 * HOUR).used == 2
    # AND 24 h after its window opened, it counts again
    later = _send(rates, [phone(1)], T0 + WINDOW_S + 1)
    assert later.opened == frozenset({phone(1)})


def test_repeat_recipients_go_while_new_ones_are_held_at_the_limit(rates: RatePort) -> None:
    # GIVEN an account capped at 2 that messaged phones 1 and 2
    _send(rates, [phone(1), phone(2)], T0, limit=2)
    # WHEN a batch has a new recipient between two repeat ones
    mixed = _send(rates, [phone(1), phone(3), phone(2)], T0 + HOUR, limit=2)
    # THEN the repeats get slots, the new one is held
    assert (mixed.granted, len(mixed.slots), mixed.limit_reached, mixed.opened) == ((0, 2), 2, True, frozenset())


def test_a_lower_tier_takes_effect_at_once_and_room_returns_when_usage_drops_below_it(rates: RatePort) -> None:
    # GIVEN a 1K-tier account that messaged 200 recipients at T0 and 100 an hour later
    limit_1k = recipient_limit(MessagingTier.TIER_1K, 1_000_000)
    for batch in range(20):
        _send(rates, _numbers(batch * 10, 10), T0, limit=limit_1k)
    for batch in range(10):
        _send(rates, _numbers(1_000 + batch * 10, 10), T0 + HOUR, limit=limit_1k)
    # WHEN its tier drops to 250
    held = _send(rates, [phone(5_000)], T0 + 2 * HOUR, limit=TIER_250)
    usage = rates.usage(ACCOUNT, TIER_250, T0 + 2 * HOUR)
    # THEN new recipients are held until the 200 of T0 stop counting (100 left: below 250)
    assert held.limit_reached
    assert (usage.used, usage.resets_at) == (300, bucket_expiry(bucket_of(T0)))


def test_every_slot_taken_refuses_with_a_retry_time_and_counts_nothing(rates: RatePort) -> None:
    # GIVEN an account whose next 30 s of slots are taken (1 msg/s)
    rates.reserve(ACCOUNT, [phone(1)] * 30, messages_per_second=1, recipient_limit=100, now=T0, max_wait_s=60.0)
    # WHEN a batch to a new recipient may wait 20 s
    refused = rates.reserve(ACCOUNT, [phone(2)], messages_per_second=1, recipient_limit=100, now=T0, max_wait_s=20.0)
    # THEN it is refused for the rate, not the limit, and its recipient is not counted
    assert (refused.granted, refused.limit_reached) == ((), False)
    assert refused.retry_after_s == pytest.approx(30.0)
    assert rates.usage(ACCOUNT, 100, T0).used == 1


def test_a_day_count_written_before_the_rolling_count_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the rate item as the per-UTC-day version left it: 40 recipients today
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**create_table_request("limits"))
        table = TableGateway(client, "limits")
        table.batch_write(
            [
                {
                    PARTITION_KEY: {"S": f"RATE#{ACCOUNT}"},
                    SORT_KEY: {"S": GCRA_SK},
                    "tat": {"N": str(T0 - 5)},
                    "day": {"S": "2027-01-15"},
                    "count": {"N": "40"},
                }
            ]
        )
        limiter = RateLimiter(table)
        assert datetime.fromtimestamp(T0, UTC).date().isoformat() == "2027-01-15"
        # WHEN its usage is read, and a batch is reserved
        before = limiter.usage(ACCOUNT, TIER_250, T0)
        _send(limiter, [phone(1)], T0)
        # THEN the day's 40 count until 24 h after now (not a moment less), and the day's count is folded away
        assert before.used == 40
        assert limiter.usage(ACCOUNT, TIER_250, T0).used == 41
        assert limiter.usage(ACCOUNT, TIER_250, T0 + WINDOW_S).used == 41
        item = table.get(f"RATE#{ACCOUNT}", GCRA_SK) or {}
        assert "day" not in item
        assert "count" not in item
