"""Interfaces the planner and sender need (implemented in wabacast.adapters; faked in unit tests)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from wabacast.domain.delivery import ActiveAccount, JobOutcome, OutgoingMessage, PlanState, QueueProgress, Reservation
from wabacast.domain.jobs import Job
from wabacast.domain.models import Account, Queue, QueueStatus
from wabacast.providers.base import Provider

# A stored item as the adapters read it (attribute name -> plain value).
Item = dict[str, Any]


class DeliveryPort(Protocol):
    def read_queue(
        self, business_id: str, queue_id: str, *, with_recipients: bool = True
    ) -> tuple[Queue, QueueProgress] | None: ...
    def transition(
        self,
        queue: Queue,
        *,
        allowed_from: Sequence[QueueStatus],
        to: QueueStatus,
        now: datetime,
        reason: str | None = None,
        register: bool | None = None,
        account_id: str | None = None,
    ) -> bool: ...
    def complete_if_done(self, queue: Queue, now: datetime) -> bool: ...
    def record_rate(self, queue: Queue, *, at: float, done: int, rate: float) -> None: ...
    def active_accounts(self) -> list[ActiveAccount]: ...
    def acquire_lease(self, business_id: str, account_id: str, *, now: float, seconds: float) -> bool: ...
    def release_lease(self, business_id: str, account_id: str) -> None: ...
    def unregister(self, queue: Queue, account_id: str | None = None) -> None: ...
    def existing_jobs(self, queue_id: str, job_ids: Iterable[str]) -> dict[str, Item]: ...
    def commit_page(
        self,
        queue: Queue,
        plan: PlanState,
        *,
        jobs: Sequence[Job],
        cursor: dict[str, Any] | None,
        done: bool,
        counter_changes: dict[str, int],
        now: datetime,
    ) -> bool: ...
    def pending_jobs(self, queue_id: str, limit: int) -> list[Job]: ...
    def stale_queued_jobs(self, queue_id: str, older_than: datetime, limit: int) -> list[Job]: ...
    def retryable_failed_jobs(self, queue_id: str, limit: int) -> list[Job]: ...
    def mark_queued(self, jobs: Sequence[Job], account_id: str, now: datetime) -> list[Job]: ...
    def get_jobs(self, refs: Iterable[tuple[str, str]]) -> dict[str, Job]: ...
    def get_queues(self, refs: Iterable[tuple[str, str]]) -> dict[str, tuple[Queue, QueueProgress]]: ...
    def apply(self, outcome: JobOutcome, queue: Queue) -> bool: ...


class FeedPort(Protocol):
    def backlog(self, account_id: str) -> int: ...
    def send(self, account_id: str, messages: Sequence[OutgoingMessage]) -> list[str]: ...
    def delay_redelivery(self, queue_url: str, receipt_handle: str, seconds: int) -> None: ...


class RatePort(Protocol):
    def reserve(
        self,
        account_id: str,
        count: int,
        *,
        messages_per_second: int,
        daily_limit: int,
        now: float,
        max_wait_s: float,
    ) -> Reservation: ...
    def daily_remaining(self, account_id: str, daily_limit: int, now: float) -> int: ...


class ProviderPort(Protocol):
    def for_account(self, account: Account, secret_name: str) -> Provider: ...
