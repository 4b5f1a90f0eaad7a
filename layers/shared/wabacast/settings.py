"""Runtime settings, read once from the environment by the entry points (never at import time of logic)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_META_API_VERSION = "v24.0"


class Settings(BaseModel):
    """Everything a handler needs to know about where it runs.

    Built by `Settings.from_env()` in handlers and the local stack, and passed down explicitly.
    """

    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3)
    # Account credentials live at "{secrets_prefix}/{businessId}/accounts/{accountId}"; IAM is scoped to the prefix.
    secrets_prefix: str = "wabacast"
    region: str = "us-east-1"
    # Optional override used by the local stack (moto server); boto3 honours AWS_ENDPOINT_URL by itself.
    endpoint_url: str | None = None
    default_page_size: int = Field(default=50, ge=1, le=100)
    # Base URL of the sandbox WhatsApp provider; sandbox accounts cannot send when it is not set.
    sandbox_base_url: str | None = None
    # Whether the API creates `provider: sandbox` accounts. Only the local stack (and tests) turn it on: in AWS a
    # sandbox account would be a tenant's number that never reaches WhatsApp.
    allow_sandbox_accounts: bool = False
    # Meta Cloud API (Graph API) endpoint and version used by `meta` accounts. The default is a version Meta
    # supports for at least a year: v24.0 until 2028-02-18 (Meta's versions changelog, checked 2026-11-29).
    meta_base_url: str = "https://graph.facebook.com"
    meta_api_version: str = Field(default=DEFAULT_META_API_VERSION, pattern=r"^v[0-9]+\.[0-9]+$")
    # Twilio's REST hosts, read by the account sync (IncomingPhoneNumbers, WhatsApp Senders, Content API); tests point
    # them at a local fake server. Sends go through Twilio's client, which has its own defaults.
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_messaging_base_url: str = "https://messaging.twilio.com"
    twilio_content_base_url: str = "https://content.twilio.com"
    # Per provider call (connect and read each); a read timeout is an unknown outcome, never resent.
    provider_timeout_s: float = Field(default=10.0, gt=0, le=60)

    # Delivery. Each account gets "{queue_name_prefix}-{accountId}.fifo" and its "-dlq.fifo" twin.
    queue_name_prefix: str = "wabacast"
    # When set (in AWS), account queues get event source mappings to these functions; the local runner plays
    # the mappings itself, so it leaves them unset.
    sender_function_arn: str | None = None
    dead_letter_function_arn: str | None = None
    # When set, starting a queue invokes the planner at once (asynchronously) instead of waiting for its tick.
    planner_function_name: str | None = None
    # How much an account's SQS queue is fed at a time: its rate times this many seconds.
    feed_window_s: float = Field(default=60.0, gt=0)
    # A QUEUED job not picked up for this long is assumed lost between the planner and SQS and fed again.
    requeue_after_s: float = Field(default=900.0, gt=0)
    # The longest a sender waits for rate-limit slots before handing the batch back to SQS.
    max_rate_wait_s: float = Field(default=20.0, gt=0)
    # The planner tick hands "plan account X" messages to this SQS standard queue (one worker invocation per
    # account); unset, the tick plans every account itself (unit tests, one-process tools).
    plan_queue_url: str | None = None
    # A sender batch's time besides its rate slots (provider round trip + handler time): sizes the sender
    # mapping's MaximumConcurrency (see sender_concurrency).
    sender_batch_s: float = Field(default=0.8, gt=0, le=10)
    # Jobs expire (DynamoDB TTL) this many days after they were planned; queue totals stay.
    job_retention_days: int = Field(default=90, ge=1, le=3650)
    metrics_namespace: str = "wabacast"
    # The `service` dimension of every metric (POWERTOOLS_SERVICE_NAME): the stack sets it per environment.
    metrics_service: str = "wabacast"
    # EventBridge Scheduler: queues' start, recurrence and end schedules go to this group and invoke the scheduler
    # function (target) through the invoke role; unset, SCHEDULED queues wait for a `process` call after their start.
    schedule_group_name: str | None = None
    scheduler_target_arn: str | None = None
    scheduler_role_arn: str | None = None
    schedule_dlq_arn: str | None = None
    # Inbound webhooks: the stack's webhook secret in Secrets Manager, a JSON object {"metaVerifyToken": ...,
    # "metaAppSecret"?: ...} (an app secret set here verifies every Meta webhook instead of the accounts' own).
    webhook_secret_name: str | None = None
    # The public base URL of the API (https://<id>.execute-api.<region>.amazonaws.com): Twilio sends get a
    # StatusCallback under it. Unset: no status callbacks are asked for.
    public_base_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            table_name=env.get("TABLE_NAME", ""),
            secrets_prefix=env.get("SECRETS_PREFIX", "wabacast"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            sandbox_base_url=env.get("SANDBOX_BASE_URL") or None,
            allow_sandbox_accounts=(env.get("ALLOW_SANDBOX_ACCOUNTS") or "").strip().lower() == "true",
            meta_base_url=env.get("META_BASE_URL") or "https://graph.facebook.com",
            meta_api_version=env.get("META_API_VERSION") or DEFAULT_META_API_VERSION,
            twilio_api_base_url=env.get("TWILIO_API_BASE_URL") or "https://api.twilio.com",
            twilio_messaging_base_url=env.get("TWILIO_MESSAGING_BASE_URL") or "https://messaging.twilio.com",
            twilio_content_base_url=env.get("TWILIO_CONTENT_BASE_URL") or "https://content.twilio.com",
            provider_timeout_s=float(env.get("PROVIDER_TIMEOUT_S") or 10.0),
            queue_name_prefix=env.get("QUEUE_NAME_PREFIX", "wabacast"),
            sender_function_arn=env.get("SENDER_FUNCTION_ARN") or None,
            dead_letter_function_arn=env.get("DEAD_LETTER_FUNCTION_ARN") or None,
            planner_function_name=env.get("PLANNER_FUNCTION_NAME") or None,
            feed_window_s=float(env.get("FEED_WINDOW_S", "60")),
            requeue_after_s=float(env.get("REQUEUE_AFTER_S", "900")),
            max_rate_wait_s=float(env.get("MAX_RATE_WAIT_S", "20")),
            plan_queue_url=env.get("PLAN_QUEUE_URL") or None,
            sender_batch_s=float(env.get("SENDER_BATCH_S") or 0.8),
            job_retention_days=int(env.get("JOB_RETENTION_DAYS") or 90),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "wabacast"),
            metrics_service=env.get("POWERTOOLS_SERVICE_NAME") or "wabacast",
            schedule_group_name=env.get("SCHEDULE_GROUP_NAME") or None,
            scheduler_target_arn=env.get("SCHEDULER_TARGET_ARN") or None,
            scheduler_role_arn=env.get("SCHEDULER_ROLE_ARN") or None,
            schedule_dlq_arn=env.get("SCHEDULE_DLQ_ARN") or None,
            webhook_secret_name=env.get("WEBHOOK_SECRET_NAME") or None,
            public_base_url=env.get("PUBLIC_BASE_URL") or None,
        )
