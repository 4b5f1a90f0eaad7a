"""Webhook benchmark: Meta status receipts through the API handler on in-process moto.

    .venv/bin/python bench/webhook_bench.py --jobs 300

It creates a business, a Meta account and a queue through the services the API uses, writes `--jobs` SENT jobs
(as the sender leaves them), then posts signed Meta status webhooks to the API handler as API Gateway would, in
the order Meta usually sends them: for every job `sent`, `delivered`, `read`, then every `delivered` again
(a retried delivery). It prints, as JSON:
  - handler time per request (`--batch` statuses each, default 1): p50 / p99 / mean, in ms, for each kind of
    status, measured around `lambda_handler` in this process, as wall time and as the process's CPU time (moto's
    DynamoDB included in both: in AWS the DynamoDB calls are network round trips instead, a few ms each);
  - DynamoDB write and read request units per status, by DynamoDB's rules (bench/capacity.py: moto does not meter),
    for each kind of status, and the AWS calls per status by operation.
The figures measure this machine and moto; the write units are what AWS would bill for the same requests.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from bench_support import MOTO_ENVIRONMENT, AwsCallCounter, script_account_reads
from capacity import CapacityMeter
from moto import mock_aws

REPO = Path(__file__).resolve().parents[1]
APP_SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"  # noqa: S105 - a made-up app secret for moto
NUMBER_ID = "109876543210987"
HOST = "bench.execute-api.us-east-1.amazonaws.com"


class _Context:
    function_name = "wabacast-bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:wabacast-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _api_handler() -> Any:
    path = REPO / "functions" / "api" / "handler.py"
    spec = importlib.util.spec_from_file_location("wabacast_bench_api_handler", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _event(body: bytes, signature: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /api/webhooks/meta",
        "rawPath": "/api/webhooks/meta",
        "rawQueryString": "",
        "headers": {
            "host": HOST,
            "x-forwarded-proto": "https",
            "content-type": "application/json",
            "x-hub-signature-256": signature,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": HOST,
            "domainPrefix": "bench",
            "http": {"method": "POST", "path": "/api/webhooks/meta", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "POST /api/webhooks/meta",
            "stage": "$default",
            "time": "29/Nov/2026:09:00:00 +0000",
            "timeEpoch": 0,
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(jobs: int, batch: int = 1) -> dict[str, Any]:
    from wabacast.adapters.dynamodb.base import TableGateway
    from wabacast.adapters.dynamodb.jobs import job_to_item
    from wabacast.bootstrap import create_resources
    from wabacast.container import build_services
    from wabacast.domain.health import AccountSnapshot, PhoneNumberHealth
    from wabacast.domain.jobs import Job, JobStatus
    from wabacast.domain.models import Provider
    from wabacast.domain.receipts import job_reference
    from wabacast.logic.accounts import AccountDraft
    from wabacast.logic.queues import QueueDraft
    from wabacast.providers.webhooks import meta_signature
    from wabacast.settings import Settings

    settings = Settings.from_env()
    create_resources(settings)
    boto3.client("secretsmanager", region_name=settings.region).create_secret(
        Name=str(settings.webhook_secret_name), SecretString=json.dumps({"metaVerifyToken": "bench"})
    )
    services = build_services(settings)
    business, _, _ = services.businesses.create("Bench", "Europe/Madrid")
    credentials = {
        "phoneNumberId": NUMBER_ID,
        "wabaId": "209876543210",
        "accessToken": "EAAGmetaAccessTokenValue0123456789",
        "appSecret": APP_SECRET,
    }
    draft = AccountDraft(
        display_name="Bench", phone_number="+34612300000", provider=Provider.META, credentials=credentials
    )
    account = services.accounts.create(business.id, draft)
    # Its ownership check, with the Graph API's answer scripted (no network): the account becomes ACTIVE.
    script_account_reads(AccountSnapshot(phone=PhoneNumberHealth(display_phone_number=draft.phone_number)))
    account = services.health.sync(business.id, account.id)
    queue = services.queues.create(
        business.id,
        QueueDraft.model_validate(
            {
                "name": "Bench",
                "template": {"name": "bench", "language": "en_US"},
                "audience": {"recipients": [{"phone_number": "+34612300001"}]},
                "account_id": account.id,
            }
        ),
    )
    table = TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)
    now = datetime.now(UTC)
    sent = [
        Job(
            id=f"job_{index:06d}",
            queue_id=queue.id,
            business_id=business.id,
            phone_number=f"+346123{index:05d}",
            variables={"1": "value"},
            seq=index,
            status=JobStatus.SENT,
            attempts=1,
            account_id=account.id,
            provider_message_id=f"wamid.bench.{index}",
            created_at=now,
            updated_at=now,
            queued_at=now,
            sent_at=now,
        )
        for index in range(jobs)
    ]
    table.batch_write([job_to_item(job) for job in sent])

    def payload(group: list[Job], status: str) -> bytes:
        entry = {
            "id": "209876543210",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "34612300000", "phone_number_id": NUMBER_ID},
                        "statuses": [
                            {
                                "id": job.provider_message_id,
                                "status": status,
                                "timestamp": str(int(now.timestamp())),
                                "recipient_id": job.phone_number.removeprefix("+"),
                                "biz_opaque_callback_data": job_reference(job.queue_id, job.id),
                                "pricing": {"billable": True, "pricing_model": "PMP", "category": "marketing"},
                            }
                            for job in group
                        ],
                    },
                }
            ],
        }
        return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()

    api = _api_handler()
    meter = CapacityMeter().install()
    calls = AwsCallCounter().install()
    # One request first: the handler's cold work (services, the account secret through the cache) is not a status's.
    warm_up = payload([sent[0]], "sent")
    api.lambda_handler(_event(warm_up, meta_signature(warm_up, APP_SECRET)), _Context())
    results: dict[str, Any] = {}
    try:
        for phase in ("sent", "delivered", "read", "delivered (duplicate)"):
            status = phase.split(" ")[0]
            meter.reset()
            calls.clear()
            timings: list[float] = []
            cpu: list[float] = []
            for start in range(0, len(sent), batch):
                body = payload(sent[start : start + batch], status)
                event = _event(body, meta_signature(body, APP_SECRET))
                started, started_cpu = time.perf_counter(), time.process_time()
                response = api.lambda_handler(event, _Context())
                timings.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                if response["statusCode"] != 200:
                    raise RuntimeError(f"{phase}: {response}")
            report = meter.snapshot()
            results[phase] = {
                "statuses": len(sent),
                "requests": len(timings),
                "handlerMs": {
                    "p50": round(_percentile(timings, 0.50), 2),
                    "p99": round(_percentile(timings, 0.99), 2),
                    "mean": round(statistics.fmean(timings), 2),
                },
                # CPU time of this process (handler and moto): steadier than wall time on a shared machine.
                "cpuMs": {
                    "p50": round(_percentile(cpu, 0.50), 2),
                    "p99": round(_percentile(cpu, 0.99), 2),
                    "mean": round(statistics.fmean(cpu), 2),
                },
                "wruPerStatus": round(report.wru / len(sent), 3),
                "rruPerStatus": round(report.rru / len(sent), 3),
                "awsCallsPerStatus": calls.by_operation(per=len(sent)),
            }
    finally:
        calls.uninstall()
        meter.uninstall()
    tally = services.processing.progress(business.id, queue.id).counters
    results["counters"] = {"delivered": tally.delivered, "read": tally.read}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300, help="sent jobs; each gets sent, delivered, read, delivered")
    parser.add_argument(
        "--batch", type=int, default=1, help="statuses per notification (Meta batches statuses due together)"
    )
    args = parser.parse_args()
    os.environ.update(MOTO_ENVIRONMENT)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    # The local stack's moto patches: without them moto copies the whole table for every transaction.
    from wabacast_local.moto_fixes import install_all

    install_all()
    with mock_aws():
        print(json.dumps({"jobs": args.jobs, "statusesPerRequest": args.batch, **run(args.jobs, args.batch)}, indent=2))


if __name__ == "__main__":
    main()
