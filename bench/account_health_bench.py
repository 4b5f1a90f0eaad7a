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
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import botocore.client
from capacity import CapacityMeter
from moto import mock_aws

APP_SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"  # noqa: S105 - a made-up app secret for moto
WABA = "209876543210"
NUMBER = "+14155550123"
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "TABLE_NAME": "wabacast-bench",
    "WEBHOOK_SECRET_NAME": "wabacast/bench-webhooks",
    "POWERTOOLS_SERVICE_NAME": "wabacast",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}

_calls: Counter[tuple[str, str]] = Counter()
_original_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]


def _counting_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    _calls[(self.meta.service_model.service_name, operation_name)] += 1
    return _original_call(self, operation_name, api_params)


def run(template_count: int, queue_count: int) -> dict[str, Any]:
    from wabacast.account_health_wiring import LazyProviderReaders
    from wabacast.bootstrap import create_resources
    from wabacast.container import build_services
    from wabacast.domain.health import AccountSnapshot, PhoneNumberHealth, ProviderTemplate, TemplateStatus
    from wabacast.domain.models import Account, Provider, QueueStatus, TemplateCategory
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

    class Reader:
        def read(self, *, include_templates: bool = True) -> AccountSnapshot:
            return AccountSnapshot(
                phone=PhoneNumberHealth(display_phone_number=NUMBER, provider_status="CONNECTED"),
                templates=tuple(templates),
            )

    def scripted(_self: object, account: Account, secret_name: str) -> Reader:
        return Reader()

    # In place of the providers' readers (wabacast.providers.account_readers): no network.
    LazyProviderReaders.for_account = scripted  # type: ignore[assignment,method-assign]
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
    botocore.client.BaseClient._make_api_call = _counting_call  # type: ignore[attr-defined]
    results: dict[str, Any] = {}
    try:
        for name, step, before in steps:
            if before is not None:
                before()
            meter.reset()
            _calls.clear()
            started = time.perf_counter()
            step()
            elapsed_ms = (time.perf_counter() - started) * 1000
            report = meter.snapshot()
            results[name] = {
                "wru": round(report.wru, 2),
                "rru": round(report.rru, 2),
                "ms": round(elapsed_ms, 1),
                "awsCalls": {f"{service}:{operation}": count for (service, operation), count in sorted(_calls.items())},
            }
    finally:
        botocore.client.BaseClient._make_api_call = _original_call  # type: ignore[attr-defined]
        meter.uninstall()
    paused = [services.queues.get(business.id, queue_id).status for queue_id in lifecycle_moves]
    results["queuesPaused"] = sum(1 for status in paused if status == QueueStatus.PAUSED)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", type=int, default=50, help="templates the provider lists")
    parser.add_argument("--queues", type=int, default=10, help="PROCESSING queues of the account")
    args = parser.parse_args()
    os.environ.update(ENVIRONMENT)
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
