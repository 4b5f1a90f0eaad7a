"""The planner, sender and processing service wired to the delivery fakes, with clocks that move only when told."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel

from tests.unit.conftest import AccountFactory
from tests.unit.delivery.builders import Recipients, make_queue
from tests.unit.delivery_fakes import (
    FakeFeed,
    FakeJobStore,
    FakeMetrics,
    FakePlanDispatch,
    FakePlannerRegistry,
    FakeProviders,
    FakeQueueLifecycle,
    FakeRates,
    FakeSchedules,
)
from tests.unit.fakes import FakeAccountStore, FakeBusinessStore, FakeContactStore, FakeQueueStore, FixedClock
from wabacast.domain.jobs import JobStatus
from wabacast.domain.models import Account, AccountLimits, Business, Queue
from wabacast.logic.planner import Planner, PlannerConfig, TickReport
from wabacast.logic.processing import ProcessingService
from wabacast.logic.scheduling import ScheduleKeeper
from wabacast.logic.sender import BatchResult, InboundRecord, Sender

# Plenty of time left in the invocation.
PLENTY: Callable[[], float] = lambda: 900.0  # noqa: E731


class WallClock:
    """Epoch seconds (leases, feed marks, rate slots) that move only when a test moves them."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class DeliveryWorld:
    """One business with one sending account, every delivery port faked, and helpers to run the pipeline."""

    business: Business
    account: Account
    clock: FixedClock
    wall: WallClock
    businesses: FakeBusinessStore
    accounts: FakeAccountStore
    queues: FakeQueueStore
    contacts: FakeContactStore
    registry: FakePlannerRegistry
    lifecycle: FakeQueueLifecycle
    jobs: FakeJobStore
    feed: FakeFeed
    rates: FakeRates
    providers: FakeProviders
    metrics: FakeMetrics
    new_account: AccountFactory
    # Every delay the sender slept, in order (its `sleep` never waits).
    sleeps: list[float] = field(default_factory=list)
    _deliveries: int = 0

    # Building --------------------------------------------------------------------------------------------------
    def add_queue(
        self,
        queue_id: str = "q_main",
        *,
        recipients: Recipients = (),
        account: Account | None = None,
        register: bool = True,
        **fields: Any,
    ) -> Queue:
        """A queue of the business (PROCESSING and in its account's registry unless told otherwise)."""
        queue = make_queue(
            self.business.id,
            (account or self.account).id,
            queue_id=queue_id,
            recipients=recipients,
            **fields,
        )
        return self.lifecycle.add(queue, register=register)

    def set_account(self, account: Account, **fields: Any) -> None:
        """Change a stored account (status, quality rating, limits) as an update or a provider webhook would."""
        item = self.accounts.items[(account.business_id, account.id)]
        item.update(
            {
                name: value.model_dump(mode="json") if isinstance(value, BaseModel) else getattr(value, "value", value)
                for name, value in fields.items()
            }
        )

    def set_time(self, moment: datetime) -> None:
        """Move both clocks (the domain's and the epoch seconds of leases, feed marks and rate slots) to `moment`."""
        self.clock.now = moment
        self.wall.now = moment.timestamp()

    # Running ---------------------------------------------------------------------------------------------------
    def planner(
        self, *, feed_window_s: float = 60.0, requeue_after_s: float = 900.0, dispatch: FakePlanDispatch | None = None
    ) -> Planner:
        return Planner(
            lifecycle=self.lifecycle,
            registry=self.registry,
            jobs=self.jobs,
            counters=self.jobs,
            businesses=self.businesses,
            accounts=self.accounts,
            contacts=self.contacts,
            feed=self.feed,
            rates=self.rates,
            metrics=self.metrics,
            config=PlannerConfig(feed_window_s=feed_window_s, requeue_after_s=requeue_after_s),
            dispatch=dispatch,
            clock=self.clock,
            wall_time=self.wall,
        )

    def plan(self, account: Account | None = None, **config: Any) -> TickReport:
        """One plan-worker run for an account (the business's first one unless told)."""
        chosen = account or self.account
        return self.planner(**config).plan_account(chosen.business_id, chosen.id, PLENTY)

    def sender(
        self,
        *,
        max_rate_wait_s: float = 20.0,
        sleep: Callable[[float], None] | None = None,
        schedules: FakeSchedules | None = None,
    ) -> Sender:
        return Sender(
            lifecycle=self.lifecycle,
            jobs=self.jobs,
            businesses=self.businesses,
            accounts=self.accounts,
            contacts=self.contacts,
            providers=self.providers,
            rates=self.rates,
            redelivery=self.feed.delay_redelivery,
            metrics=self.metrics,
            secret_name=lambda business_id, account_id: f"wabacast/{business_id}/accounts/{account_id}",
            max_rate_wait_s=max_rate_wait_s,
            clock=self.clock,
            wall_time=self.wall,
            sleep=sleep or self.sleeps.append,
            schedules=ScheduleKeeper(schedules),
        )

    def processing(self, schedules: FakeSchedules | None = None) -> ProcessingService:
        return ProcessingService(
            self.queues,
            self.lifecycle,
            self.jobs,
            self.jobs,
            trigger=None,
            clock=self.clock,
            schedules=ScheduleKeeper(schedules),
            limits=self.rates,
        )

    def records(self, account: Account | None = None, limit: int | None = None) -> list[InboundRecord]:
        """The next messages waiting in an account's SQS queue, as a sender receives them."""
        chosen = account or self.account
        taken = self.feed.take(chosen.id, limit)
        records = []
        for message in taken:
            self._deliveries += 1
            records.append(
                InboundRecord(
                    message_id=f"msg-{self._deliveries}",
                    receipt_handle=f"receipt-{self._deliveries}",
                    message=message.message,
                    queue_url=f"https://sqs.local/{chosen.id}.fifo",
                    sent_timestamp=self.wall(),
                )
            )
        return records

    def deliver(self, account: Account | None = None, *, batch_size: int = 10) -> list[BatchResult]:
        """Senders take every waiting message of the account's queue, in batches of `batch_size`."""
        chosen = account or self.account
        sender = self.sender()
        results = []
        while batch := self.records(chosen, batch_size):
            results.append(sender.send_batch(chosen.id, batch))
        return results

    # Reading ---------------------------------------------------------------------------------------------------
    def statuses(self, queue_id: str = "q_main") -> Counter[JobStatus]:
        return Counter(job.status for job in self.jobs.jobs_of(queue_id))

    def queue(self, queue_id: str = "q_main") -> Queue:
        found = self.lifecycle.get(self.business.id, queue_id)
        assert found is not None
        return found

    def registered(self, account: Account | None = None) -> set[str]:
        chosen = account or self.account
        return self.registry.queue_ids(chosen.business_id, chosen.id)


def counters_add_up(world: DeliveryWorld, queue_ids: Sequence[str] = ("q_main",)) -> bool:
    """total = pending + sent + failed + opted_out + skipped, for each queue."""
    for queue_id in queue_ids:
        counters = world.jobs.tally(queue_id).counters
        parts = counters.pending + counters.sent + counters.failed + counters.opted_out + counters.skipped
        if counters.total != parts:
            return False
    return True


@pytest.fixture
def world(
    business: Business,
    make_account: AccountFactory,
    business_store: FakeBusinessStore,
    account_store: FakeAccountStore,
    queue_store: FakeQueueStore,
    contact_store: FakeContactStore,
    clock: FixedClock,
) -> DeliveryWorld:
    account = make_account(limits=AccountLimits(messages_per_second=10, daily_recipient_limit=100_000))
    registry = FakePlannerRegistry()
    jobs = FakeJobStore()
    lifecycle = FakeQueueLifecycle(registry, items=queue_store.items)
    lifecycle.jobs = jobs
    return DeliveryWorld(
        business=business,
        account=account,
        clock=clock,
        wall=WallClock(clock.now.timestamp()),
        businesses=business_store,
        accounts=account_store,
        queues=queue_store,
        contacts=contact_store,
        registry=registry,
        lifecycle=lifecycle,
        jobs=jobs,
        feed=FakeFeed(),
        rates=FakeRates(),
        providers=FakeProviders(clock=clock),
        metrics=FakeMetrics(),
        new_account=make_account,
    )
