"""Meta's messaging limit: how many unique recipients an account may open a conversation with in a rolling 24 h.

The account's limit is its tier's (synced from the provider) capped by the user's own `dailyRecipientLimit`; an
unlimited tier leaves the cap alone. Usage is counted in time buckets (`RollingCount`): a recipient counted in a
bucket stops counting when the bucket's last moment is 24 h old, so a slot returns at most one bucket width later
than exactly 24 h after it was taken, never earlier (docs/decisions.md, 30). Plain data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from wabacast.domain.models import Account, MessagingTier

WINDOW_S = 24 * 3600
# Width of one bucket: 96 of them cover 24 h, and the list stays far below 1 KB (one write unit per update).
BUCKET_S = 900
# A batch's new recipients are counted in the bucket of its last slot plus this: a message reaches Meta after its
# slot by the provider call's time, and its recipient must not stop counting before Meta's own 24 h are over.
SEND_MARGIN_S = 60.0

# Unique recipients per rolling 24 h for each tier (None: no limit from Meta).
TIER_RECIPIENTS: dict[MessagingTier, int | None] = {
    MessagingTier.TIER_50: 50,
    MessagingTier.TIER_250: 250,
    MessagingTier.TIER_1K: 1_000,
    MessagingTier.TIER_2K: 2_000,
    MessagingTier.TIER_10K: 10_000,
    MessagingTier.TIER_100K: 100_000,
    MessagingTier.TIER_UNLIMITED: None,
}


def recipient_limit(tier: MessagingTier, own_cap: int) -> int:
    """The effective limit: the tier's, lowered by the user's own cap; an unlimited tier leaves the cap alone."""
    tier_limit = TIER_RECIPIENTS[tier]
    return own_cap if tier_limit is None else min(tier_limit, own_cap)


def account_recipient_limit(account: Account) -> int:
    return recipient_limit(account.messaging_tier, account.limits.daily_recipient_limit)


def bucket_of(at: float) -> int:
    return int(at // BUCKET_S)


def bucket_expiry(bucket: int) -> float:
    """When a recipient counted in `bucket` stops counting: 24 h after the bucket's last moment."""
    return float((bucket + 1) * BUCKET_S + WINDOW_S)


@dataclass(frozen=True)
class RollingCount:
    """Recipients counted per bucket: `counts[i]` belongs to bucket `first_bucket + i`."""

    first_bucket: int = 0
    counts: tuple[int, ...] = ()

    def live(self, now: float) -> RollingCount:
        """Without the buckets that no longer count at `now` (and without leading empty ones)."""
        counts = list(self.counts)
        first = self.first_bucket
        while counts and (bucket_expiry(first) <= now or counts[0] == 0):
            counts.pop(0)
            first += 1
        return RollingCount(first, tuple(counts)) if counts else RollingCount()

    def used(self, now: float) -> int:
        return sum(self.live(now).counts)

    def add(self, at: float, count: int, now: float) -> RollingCount:
        """`count` recipients more in the bucket of `at` (nothing when that bucket no longer counts at `now`)."""
        bucket = bucket_of(at)
        current = self.live(now)
        if count <= 0 or bucket_expiry(bucket) <= now:
            return current
        if not current.counts:
            return RollingCount(bucket, (count,))
        first = min(bucket, current.first_bucket)
        counts = [0] * (current.first_bucket - first) + list(current.counts)
        index = bucket - first
        counts += [0] * (index + 1 - len(counts))
        counts[index] += count
        return RollingCount(first, tuple(counts))

    def room_returns_at(self, limit: int, now: float) -> float | None:
        """When fewer than `limit` recipients will be counted again (the oldest buckets expiring one by one);
        None while there is room now."""
        current = self.live(now)
        used = sum(current.counts)
        for offset, count in enumerate(current.counts):
            if used < limit:
                break
            used -= count
            if used < limit:
                return bucket_expiry(current.first_bucket + offset)
        return None


@dataclass(frozen=True)
class LimitUsage:
    """An account's messaging limit at one moment: `resets_at` (epoch seconds) is when room returns, None while
    there is room."""

    limit: int
    used: int
    resets_at: float | None = None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


def usage_of(count: RollingCount, limit: int, now: float) -> LimitUsage:
    return LimitUsage(limit=limit, used=count.used(now), resets_at=count.room_returns_at(limit, now))
