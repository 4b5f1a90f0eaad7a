"""Account health benchmark: what a sync and Meta's account webhooks cost in DynamoDB, on in-process moto.

    .venv/bin/python bench/account_health_bench.py --templates 50 --queues 10

It builds the API's services (wabacast.container) with a scripted provider reader in place of the real ones (no
network), creates a Meta account and proves it with a first sync, then measures, each on its own:
  - a sync that reads `--templates` templates for the first time, one that finds them unchanged, one that finds one
    template's status changed;
  - a signed `phone_number_quality_update` FLAGGED for an account with `--queues` PROCESSING queues (each paused),
    the same notification again (nothing to change), and a `message_template_status_update` PAUSED.
For each it prints, as JSON, the DynamoDB write and read request units by DynamoDB's rules (bench/capacity.py: moto
does not meter), the AWS calls by operation, and the time in this process (moto included).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import boto3
from bench_support import MOTO_ENVIRONMENT, AwsCallCounter, script_account_reads
from capacity import CapacityMeter
from moto import mock_aws

APP_SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"  # noqa: S105 - a made-up app secret for moto
WABA = "209876543210"
NUMBER = "+14155550123"


def run(template_count: int, queue_count: int) -> dict[str, Any]:
    from wabacast.bootstrap import create_resources
    from wabacast.container import build_services
    from wabacast.domain.health import AccountSnapshot, PhoneNumberHealth, ProviderTemplate, TemplateStatus
    from wabacast.domain.models import Provider, QueueStatus, TemplateCategory
    from wabacast.logic.accounts import AccountDraft
    from wabacast.logic.queues import QueueDraft
    from wabacast.providers.webhooks import meta_signature
    from wabacast.settings import Settings

    templates = [
        ProviderTemplate(
            f"template_{index:03d}",
            "en_US",
            TemplateStatus.APPROVED,
            TemplateCategory.UTILITY,
            provider_template_id=str(1000 + index),
            components=({"type": "BODY", "text": "Your order {{1}} is on its way"},),
        )
        for index in range(template_count)
    ]

    # In place of the providers' readers (wabacast.providers.account_readers): no network.
    script_account_reads(
        AccountSnapshot(
            phone=PhoneNumberHealth(display_phone_number=NUMBER, provider_status="CONNECTED"),
            templates=tuple(templates),
        )
    )
    settings = Settings.from_env()
    create_resources(settings)
    boto3.client("secretsmanager", region_name=settings.region).create_secret(
        Name=str(settings.webhook_secret_name), SecretString=json.dumps({"metaVerifyToken": "bench"})
    )
    services = build_services(settings)
    health = services.health
    business, _, _ = services.businesses.create("Bench", "Europe/Madrid")
    credentials = {"phoneNumberId": "109876543210987", "wabaId": WABA, "accessToken": "E" * 32, "appSecret": APP_SECRET}
    account = services.accounts.create(
        business.id,
        AccountDraft(display_name="Bench", phone_number=NUMBER, provider=Provider.META, credentials=credentials),
    )
    assert health.sync(business.id, account.id).status.value == "ACTIVE"
    lifecycle_moves = []
    for index in range(queue_count):
        queue = services.queues.create(
            business.id,
            QueueDraft.model_validate(
                {
                    "name": f"Bench {index}",
                    "template": {"name": "template_000", "language": "en_US"},
                    "audience": {"recipients": [{"phone_number": "+34612300001"}]},
                    "account_id": account.id,
                }
            ),
        )
        lifecycle_moves.append(queue.id)
    for queue_id in lifecycle_moves:
        services.processing.process(business.id, queue_id)

    def notification(change: dict[str, Any]) -> bytes:
        entry = {"id": WABA, "changes": [change]}
        return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()

    def quality(event: str) -> bytes:
        value = {"display_phone_number": NUMBER.removeprefix("+"), "event": event, "current_limit": "TIER_1K"}
        change = {"field": "phone_number_quality_update", "value": value}
        return json.dumps(
            {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [change]}]}
        ).encode()

    def template_paused() -> bytes:
        value = {
            "event": "PAUSED",
            "message_template_id": 1001,
            "message_template_name": "template_001",
            "message_template_language": "en_US",
            "reason": "NONE",
        }
        change = {"field": "message_template_status_update", "value": value}
        return json.dumps(
            {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [change]}]}
        ).encode()

    def webhook(body: bytes) -> Callable[[], object]:
        return lambda: services.webhooks.receive_meta(body, meta_signature(body, APP_SECRET))

    def change_one() -> None:
        templates[2] = ProviderTemplate(
            templates[2].name,
            "en_US",
            TemplateStatus.REJECTED,
            TemplateCategory.UTILITY,
            templates[2].provider_template_id,
        )

    steps: list[tuple[str, Callable[[], object], Callable[[], None] | None]] = [
        ("sync: templates first read", lambda: health.sync(business.id, account.id), None),
        ("sync: nothing changed", lambda: health.sync(business.id, account.id), None),
        ("sync: one template changed", lambda: health.sync(business.id, account.id), change_one),
        (f"webhook: FLAGGED, {queue_count} queues paused", webhook(quality("FLAGGED")), None),
        ("webhook: FLAGGED again", webhook(quality("FLAGGED")), None),
        ("webhook: template PAUSED", webhook(template_paused()), None),
    ]
    # The first sync above proved the account; its templates are dropped so the next one reads them anew.
    from wabacast.adapters.dynamodb.templates import TemplateRepository
    from wabacast.wiring import table_gateway

    TemplateRepository(table_gateway(settings)).delete_all(business.id, account.id)

    meter = CapacityMeter().install()
    calls = AwsCallCounter().install()
    results: dict[str, Any] = {}
    try:
        for name, step, before in steps:
            if before is not None:
                before()
            meter.reset()
            calls.clear()
            started = time.perf_counter()
            step()
            elapsed_ms = (time.perf_counter() - started) * 1000
            report = meter.snapshot()
            results[name] = {
                "wru": round(report.wru, 2),
                "rru": round(report.rru, 2),
                "ms": round(elapsed_ms, 1),
                "awsCalls": calls.by_operation(),
            }
    finally:
        calls.uninstall()
        meter.uninstall()
    paused = [services.queues.get(business.id, queue_id).status for queue_id in lifecycle_moves]
    results["queuesPaused"] = sum(1 for status in paused if status == QueueStatus.PAUSED)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", type=int, default=50, help="templates the provider lists")
    parser.add_argument("--queues", type=int, default=10, help="PROCESSING queues of the account")
    args = parser.parse_args()
    os.environ.update(MOTO_ENVIRONMENT)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from wabacast_local.moto_fixes import install_all

    install_all()
    with mock_aws():
        print(
            json.dumps(
                {"templates": args.templates, "queues": args.queues, **run(args.templates, args.queues)}, indent=2
            )
        )


if __name__ == "__main__":
    main()
