"""The metrics the dashboard and the alarms read (docs/operations.md, "Monitoring"), on the delivery fakes."""

from __future__ import annotations

from tests.unit.delivery.builders import NOW, numbers
from tests.unit.delivery.conftest import DeliveryWorld
from tests.unit.delivery_fakes import provider_error
from tests.unit.fakes import phone
from wabacast.domain.models import OptOut, OptOutSource


def test_the_planner_reports_the_age_of_the_oldest_pending_job_per_account(world: DeliveryWorld) -> None:
    # GIVEN a queue started at NOW, with jobs still pending ten minutes later
    world.add_queue(recipients=numbers(3), started_at=NOW)
    world.clock.now = NOW
    world.clock.advance(minutes=10)
    # WHEN the account is planned
    world.plan()
    # THEN its backlog is ten minutes old, in seconds
    points = [p for p in world.metrics.points if p.name == "QueueBacklog"]
    assert [(p.account_id, p.value, p.unit) for p in points] == [(world.account.id, 600.0, "Seconds")]


def test_the_backlog_falls_to_zero_once_nothing_is_pending(world: DeliveryWorld) -> None:
    # GIVEN a queue whose jobs were all sent
    world.add_queue(recipients=numbers(2))
    world.plan()
    world.deliver()
    world.metrics.points.clear()
    # WHEN the account is planned again
    world.plan()
    # THEN the backlog it reports is zero
    assert world.metrics.total("QueueBacklog", account_id=world.account.id) == 0
    assert "QueueBacklog" in world.metrics.names()


def test_opt_outs_are_counted_when_planned_when_found_by_the_sender_and_when_the_provider_refuses(
    world: DeliveryWorld,
) -> None:
    # GIVEN one number opted out before planning
    world.contacts.add_opt_out(
        world.business.id, OptOut(phone_number=phone(1), source=OptOutSource.API, created_at=NOW)
    )
    world.add_queue(recipients=numbers(3))
    world.plan()
    records = world.records()
    # AND one that opted out after planning, and one the provider reports as opted out
    world.contacts.add_opt_out(
        world.business.id, OptOut(phone_number=phone(2), source=OptOutSource.STOP_REPLY, created_at=NOW)
    )
    world.providers.provider(world.account.id).fail_next(provider_error("131050"))
    # WHEN a sender gets the fed jobs
    world.sender().send_batch(world.account.id, records)
    # THEN each of the three is counted once
    assert world.metrics.total("OptedOut") == 3
    assert world.metrics.total("MessagesSent") == 0
