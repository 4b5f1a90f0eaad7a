"""The messaging limit's rules: the effective limit of a tier and a cap, and the rolling 24 h count in buckets."""

from __future__ import annotations

import pytest

from wabacast.domain.messaging_limit import (
    BUCKET_S,
    WINDOW_S,
    RollingCount,
    bucket_expiry,
    bucket_of,
    recipient_limit,
    usage_of,
)
from wabacast.domain.models import MessagingTier

# A moment 100 s into a bucket.
T0 = 1_800_000_000 - 1_800_000_000 % BUCKET_S + 100.0


@pytest.mark.parametrize(
    ("tier", "own_cap", "expected"),
    [
        (MessagingTier.TIER_250, 1_000, 250),
        (MessagingTier.TIER_1K, 300, 300),
        (MessagingTier.TIER_100K, 10_000_000, 100_000),
        (MessagingTier.TIER_50, 1_000, 50),
        (MessagingTier.TIER_UNLIMITED, 2_500_000, 2_500_000),
    ],
)
def test_the_effective_limit_is_the_tier_s_lowered_by_the_user_s_own_cap(
    tier: MessagingTier, own_cap: int, expected: int
) -> None:
    # GIVEN / WHEN the limit of a tier and a cap is asked
    limit = recipient_limit(tier, own_cap)
    # THEN it is the smaller of the two, the cap alone for an unlimited tier
    assert limit == expected


def test_a_recipient_counted_now_stops_counting_24_h_after_its_bucket_ends() -> None:
    # GIVEN 3 recipients counted at T0
    count = RollingCount().add(T0, 3, T0)
    expires = bucket_expiry(bucket_of(T0))
    # WHEN the count is read just before and at the bucket's expiry
    # THEN they count for at least 24 h and at most one bucket longer
    assert count.used(T0 + WINDOW_S) == 3
    assert count.used(expires - 0.001) == 3
    assert count.used(expires) == 0
    assert WINDOW_S < expires - T0 <= WINDOW_S + BUCKET_S


def test_room_returns_when_enough_old_buckets_expire_to_go_below_the_limit() -> None:
    # GIVEN 4 recipients at T0, 3 an hour later and 3 two hours later, against a limit of 10 then 6
    count = RollingCount().add(T0, 4, T0).add(T0 + 3600, 3, T0 + 3600).add(T0 + 7200, 5, T0 + 7200)
    now = T0 + 7200
    # WHEN it is asked when room returns
    full = count.room_returns_at(10, now)
    lowered = count.room_returns_at(6, now)
    # THEN with 12 counted and a limit of 10 the first bucket's expiry frees room (8 left); with 6, the second's
    assert full == bucket_expiry(bucket_of(T0))
    assert lowered == bucket_expiry(bucket_of(T0 + 3600))
    # AND with room now there is no reset time
    assert count.room_returns_at(13, now) is None
    assert usage_of(count, 10, now).remaining == 0
    assert usage_of(count, 13, now).remaining == 1


def test_counts_for_an_earlier_bucket_are_kept_in_order_and_expired_ones_dropped() -> None:
    # GIVEN a count whose first bucket lies an hour ahead (counts go to a batch's last slot)
    count = RollingCount().add(T0 + 3600, 2, T0)
    # WHEN recipients are added for the present bucket, and for one already 25 h old
    count = count.add(T0, 1, T0).add(T0 - 25 * 3600, 7, T0)
    # THEN the present bucket comes first, the old one is not counted
    assert count.first_bucket == bucket_of(T0)
    assert count.used(T0) == 3
    assert count.live(bucket_expiry(bucket_of(T0))).counts == (2,)
