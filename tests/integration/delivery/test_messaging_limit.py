"""The messaging limit through the handlers on moto: a queue held by its account's unique recipients per rolling 24 h
shows `limitResetsAt` in its progress, the account shows its use, and sending resumes when room returns."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.integration.conftest import ApiClient, phone
from tests.integration.delivery.conftest import Pipeline, new_queue, process, sandbox_account
from wabacast.adapters.dynamodb.ratelimit import GCRA_SK, RateLimiter
from wabacast.domain.messaging_limit import SEND_MARGIN_S, bucket_expiry, bucket_of
from wabacast.storage.table import PARTITION_KEY, SORT_KEY


def _iso(moment: str | None) -> datetime | None:
    return datetime.fromisoformat(moment) if moment is not None else None


def test_a_queue_held_by_the_messaging_limit_shows_when_room_returns_then_sends(
    business: ApiClient, pipeline: Pipeline
) -> None:
    # GIVEN a 250-tier account whose senders reached 250 unique recipients an hour ago
    account = sandbox_account(business, phone(1), messagingTier="TIER_250")
    an_hour_ago = time.time() - 3600
    reservation = RateLimiter(pipeline.table).reserve(
        account["id"],
        [phone(20_000 + n) for n in range(250)],
        messages_per_second=1000,
        recipient_limit=250,
        now=an_hour_ago,
        max_wait_s=20.0,
    )
    assert len(reservation.granted) == 250
    resets_at = datetime.fromtimestamp(bucket_expiry(bucket_of(reservation.slots[-1] + SEND_MARGIN_S)), UTC)
    # AND a queue of 3 new recipients, started
    queue = new_queue(business, [phone(7_001), phone(7_002), phone(7_003)])
    started = process(business, queue["id"])
    assert started["limitResetsAt"] is None

    # WHEN the planner runs
    pipeline.tick()

    # THEN nothing was fed, and the progress says when room returns
    assert pipeline.backlog(account["id"]) == 0
    progress = pipeline.progress(queue["id"])
    assert (progress["status"], progress["counters"]["pending"]) == ("PROCESSING", 3)
    assert _iso(progress["limitResetsAt"]) == resets_at
    assert progress["limitResetsAt"].endswith("Z") or progress["limitResetsAt"].endswith("+00:00")
    # AND the account shows its messaging limit in use
    shown = business.get(f"/api/whatsapp/accounts/{account['id']}").body["messagingLimit"]
    assert (shown["limit"], shown["used"], _iso(shown["resetsAt"])) == (250, 250, resets_at)

    # WHEN the 24 h of those recipients pass (their counts gone) and the pipeline runs
    pipeline.table.client.delete_item(
        TableName=pipeline.table.table_name,
        Key={PARTITION_KEY: {"S": f"RATE#{account['id']}"}, SORT_KEY: {"S": GCRA_SK}},
    )
    done = pipeline.run_until_settled(queue["id"], max_rounds=5)[queue["id"]]

    # THEN the queue is sent and no longer shown as held; the account counts its 3 new recipients
    assert (done["status"], done["counters"]["sent"], done["limitResetsAt"]) == ("COMPLETED", 3, None)
    shown = business.get(f"/api/whatsapp/accounts/{account['id']}").body["messagingLimit"]
    assert (shown["limit"], shown["used"], shown["resetsAt"]) == (250, 3, None)
