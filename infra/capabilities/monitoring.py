"""Monitoring capability: the CloudWatch dashboard, the alarms and the SNS topic they notify.

The functions write their metrics as EMF log lines (wabacast.adapters.metrics) in the namespace `wabacast`, each
point under {service, account, ...} and under {service} alone; `service` is the environment's (wabacast-dev,
wabacast-prod). Alarms read the {service} series (CloudWatch alarms cannot use SEARCH expressions); the dashboard
shows per-account series with SEARCH, which also finds the accounts and queues created at run time.

docs/operations.md ("Monitoring") says what each alarm means and what to do about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct, Node

from infra.capabilities.account_sync import AccountSync
from infra.capabilities.api import Api
from infra.capabilities.delivery import Delivery
from infra.capabilities.names import METRICS_NAMESPACE, Names
from infra.capabilities.scheduling import Scheduling

# `cdk deploy -c alarmEmail=ops@example.com`, `make deploy ALARM_EMAIL=...`: subscribes the address to the alarms.
ALARM_EMAIL_CONTEXT = "alarmEmail"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

ONE_MINUTE = cdk.Duration.minutes(1)
FIVE_MINUTES = cdk.Duration.minutes(5)
ONE_DAY = cdk.Duration.days(1)

# The alarms, by construct id; each alarm's name is "<prefix>-<suffix>" (e.g. wabacast-prod-planner-heartbeat).
ALARM_NAME_SUFFIXES = {
    "AccountDeadLettersAlarm": "account-dead-letters",
    "PlanDeadLettersAlarm": "plan-dead-letters",
    "ScheduleDeadLettersAlarm": "schedule-dead-letters",
    "SenderErrorRateAlarm": "sender-error-rate",
    "LambdaThrottlesAlarm": "lambda-throttles",
    "PlannerHeartbeatAlarm": "planner-heartbeat",
    "Api5xxAlarm": "api-5xx",
    "AccountQualityRedAlarm": "account-quality-red",
    "AccountSyncFailedAlarm": "account-sync-failed",
}


@dataclass(frozen=True)
class MonitoringSettings:
    """Thresholds with production defaults, and who gets the alarms by e-mail."""

    alarm_email: str | None = None
    # Failed sends / (sent + failed), per minute, above this for `error_rate_minutes` minutes in a row.
    sender_error_rate_percent: float = 5.0
    error_rate_minutes: int = 5
    # The planner ticks every minute: this many minutes without a tick (or without any data) is an alarm.
    heartbeat_missing_minutes: int = 3
    # The account sync runs every 15 minutes: an account (or the pass itself) failing in this many passes in a row
    # is an alarm; one failed read (a provider's hiccup) is not.
    account_sync_failed_passes: int = 2

    def __post_init__(self) -> None:
        if self.alarm_email is not None and not _EMAIL.match(self.alarm_email):
            raise ValueError(
                f"The CDK context value {ALARM_EMAIL_CONTEXT!r} must be an e-mail address, not {self.alarm_email!r}"
            )

    @classmethod
    def from_context(cls, node: Node) -> MonitoringSettings:
        value: Any = node.try_get_context(ALARM_EMAIL_CONTEXT)
        return cls(alarm_email=None if value in (None, "") else str(value))


class Monitoring(Construct):
    """The alarm topic (KMS-encrypted, TLS only), the alarms, and the dashboard of one environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        delivery: Delivery,
        scheduling: Scheduling,
        api: Api,
        account_sync: AccountSync,
        settings: MonitoringSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.names = names
        self.settings = settings
        stack = cdk.Stack.of(self)
        self.functions: dict[str, lambda_.Function] = {
            "api": api.function,
            "authorizer": api.authorizer_function,
            "planner": delivery.planner,
            "plan worker": delivery.plan_worker,
            "sender": delivery.sender,
            "dead-letter consumer": delivery.dead_letter_function,
            "scheduler": scheduling.function,
            "account sync": account_sync.function,
        }

        # --- the topic -----------------------------------------------------------------------------------------
        # A customer managed key: CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key,
        # whose key policy cannot grant it anything. The statement is the one AWS documents for alarms publishing to
        # an encrypted topic (no condition: the topic policy below limits who may publish).
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"wabacast ({names.environment}): encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=f"{names.prefix}-alarms",
            display_name=f"{names.prefix} alarms",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        # The topic policy CDK writes for enforce_ssl replaces SNS's default one: allow the alarms explicitly.
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=f"{names.prefix}-*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        if settings.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

        # --- alarms --------------------------------------------------------------------------------------------
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarm(
            "AccountDeadLettersAlarm",
            "A message reached an account's dead-letter queue (counted by the dead-letter consumer), or the "
            "dead-letter consumer failed.",
            cloudwatch.MathExpression(
                expression="FILL(deadLettered, 0) + FILL(consumerErrors, 0)",
                using_metrics={
                    "deadLettered": self.metric("MessagesDeadLettered", period=FIVE_MINUTES),
                    "consumerErrors": delivery.dead_letter_function.metric_errors(period=FIVE_MINUTES),
                },
                period=FIVE_MINUTES,
                label="dead-lettered messages + consumer errors",
            ),
            threshold=1,
        )
        self._alarm(
            "PlanDeadLettersAlarm",
            "The plan worker failed 3 times on an account: its plan request is in the plan dead-letter queue.",
            delivery.plan_dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic="Maximum"
            ),
            threshold=1,
        )
        self._alarm(
            "ScheduleDeadLettersAlarm",
            "A schedule firing did not arrive: EventBridge Scheduler could not invoke the planner (a tick) or the "
            "scheduler function (a queue start), or the scheduler function failed on a queue start after Lambda's "
            "retries. The firing is in the schedule dead-letter queue.",
            scheduling.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic="Maximum"
            ),
            threshold=1,
        )
        self._alarm(
            "SenderErrorRateAlarm",
            f"More than {settings.sender_error_rate_percent:g}% of send attempts failed, for "
            f"{settings.error_rate_minutes} minutes in a row.",
            cloudwatch.MathExpression(
                expression="100 * FILL(failed, 0) / (FILL(sent, 0) + FILL(failed, 0))",
                using_metrics={"sent": self.metric("MessagesSent"), "failed": self.metric("MessagesFailed")},
                period=ONE_MINUTE,
                label="failed sends, % of attempts",
            ),
            threshold=settings.sender_error_rate_percent,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=settings.error_rate_minutes,
        )
        throttles = {
            f"throttles{index}": function.metric_throttles(period=FIVE_MINUTES)
            for index, function in enumerate(self.functions.values())
        }
        self._alarm(
            "LambdaThrottlesAlarm",
            "A wabacast function was throttled (reserved or account concurrency exhausted).",
            cloudwatch.MathExpression(
                expression=" + ".join(f"FILL({key}, 0)" for key in throttles),
                using_metrics=dict(throttles),
                period=FIVE_MINUTES,
                label="throttled invocations, all functions",
            ),
            threshold=1,
        )
        self._alarm(
            "PlannerHeartbeatAlarm",
            f"The planner has not ticked for {settings.heartbeat_missing_minutes} minutes: nothing is being planned.",
            self.metric("PlannerTick"),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=settings.heartbeat_missing_minutes,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )
        self._alarm(
            "Api5xxAlarm",
            "The HTTP API answered 5xx (a function error or timeout behind it).",
            api.http_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            threshold=1,
        )
        self._alarm(
            "AccountQualityRedAlarm",
            "A WhatsApp account's quality rating turned RED: it stops sending; its queues move to the business's "
            "default account or pause.",
            self.metric("AccountQualityRed", period=FIVE_MINUTES),
            threshold=1,
        )

        sync_period = cdk.Duration.minutes(account_sync.settings.interval_minutes)
        self._alarm(
            "AccountSyncFailedAlarm",
            f"The account sync could not read an account from its provider (or the pass itself failed) in "
            f"{settings.account_sync_failed_passes} passes in a row: that account's quality, tier and templates are "
            "not being kept up to date. The pass's log names the accounts and the provider's error codes.",
            cloudwatch.MathExpression(
                expression="FILL(accountsFailed, 0) + FILL(passErrors, 0)",
                using_metrics={
                    "accountsFailed": self.metric("AccountSyncFailed", period=sync_period),
                    "passErrors": account_sync.function.metric_errors(period=sync_period),
                },
                period=sync_period,
                label="accounts not synced + failed passes",
            ),
            threshold=1,
            evaluation_periods=settings.account_sync_failed_passes,
        )

        # --- dashboard -----------------------------------------------------------------------------------------
        self.dashboard_name = cdk.Fn.join("-", [names.prefix, cdk.Aws.REGION])
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.dashboard_name,
            default_interval=cdk.Duration.hours(3),
            widgets=self._widgets(delivery, scheduling, api, account_sync),
        )

    # Metrics -----------------------------------------------------------------------------------------------------
    def metric(
        self, name: str, *, statistic: str = "Sum", period: cdk.Duration = ONE_MINUTE, label: str | None = None
    ) -> cloudwatch.Metric:
        """A wabacast metric's service-wide series (dimension `service` only) for this environment."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": self.names.service},
            statistic=statistic,
            period=period,
            label=label,
        )

    def per_account_search(self, name: str, statistic: str, period: cdk.Duration = ONE_MINUTE) -> str:
        """SEARCH for a metric's per-account series of this environment (accounts come and go at run time)."""
        return (
            f'SEARCH(\'{{{METRICS_NAMESPACE},account,service}} MetricName="{name}" '
            f"service=\"{self.names.service}\"', '{statistic}', {int(period.to_seconds())})"
        )

    def account_dead_letter_queue_search(self, period: cdk.Duration = ONE_MINUTE) -> str:
        """SEARCH for the depth of this environment's account dead-letter queues (created at run time)."""
        return (
            'SEARCH(\'{AWS/SQS,QueueName} MetricName="ApproximateNumberOfMessagesVisible" '
            f"{self.names.queue_name_prefix} dlq', 'Maximum', {int(period.to_seconds())})"
        )

    def _alarm(
        self,
        construct_id: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods: int = 1,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self.names.prefix}-{ALARM_NAME_SUFFIXES[construct_id]}",
            alarm_description=f"{description} See docs/operations.md, Alarms.",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=missing,
        )
        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[construct_id] = alarm
        return alarm

    # Dashboard ---------------------------------------------------------------------------------------------------
    def _widgets(
        self, delivery: Delivery, scheduling: Scheduling, api: Api, account_sync: AccountSync
    ) -> list[list[cloudwatch.IWidget]]:
        functions = self.functions
        alarm_status = cloudwatch.AlarmStatusWidget(
            title="Alarms", alarms=list(self.alarms.values()), width=24, height=3
        )
        sends = cloudwatch.GraphWidget(
            title="Sends, failures, retries per minute",
            left=[
                self.metric("MessagesSent", label="sent"),
                self.metric("MessagesFailed", label="failed"),
                self.metric("MessagesRetried", label="retried"),
                self.metric("RateLimited", label="rate limited (handed back)"),
                self.metric("OptedOut", label="opted out"),
            ],
            width=12,
        )
        failures_by_class = cloudwatch.GraphWidget(
            title="Failures by error class per minute",
            left=[
                cloudwatch.MathExpression(
                    expression=(
                        f'SEARCH(\'{{{METRICS_NAMESPACE},error_class,service}} MetricName="MessagesFailed" '
                        f"service=\"{self.names.service}\"', 'Sum', 60)"
                    ),
                    label="",
                    period=ONE_MINUTE,
                )
            ],
            width=12,
        )
        latency = cloudwatch.GraphWidget(
            title="Send latency (provider call), ms",
            left=[
                self.metric("SendLatency", statistic="p50", label="p50"),
                self.metric("SendLatency", statistic="p99", label="p99"),
            ],
            width=12,
        )
        backlog = cloudwatch.GraphWidget(
            title="Backlog per account: age of the oldest pending job, s",
            left=[
                cloudwatch.MathExpression(
                    expression=self.per_account_search("QueueBacklog", "Maximum"), label="", period=ONE_MINUTE
                )
            ],
            width=12,
        )
        planner = cloudwatch.GraphWidget(
            title="Planner heartbeat (ticks per minute) and jobs planned",
            left=[self.metric("PlannerTick", label="ticks")],
            right=[self.metric("JobsPlanned", label="jobs planned"), self.metric("JobsFed", label="jobs fed")],
            width=12,
        )
        dead_letters = cloudwatch.GraphWidget(
            title="Dead-letter queues: messages waiting",
            left=[
                cloudwatch.MathExpression(
                    expression=self.account_dead_letter_queue_search(), label="", period=ONE_MINUTE
                ),
                delivery.plan_dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic="Maximum", label="plan DLQ"
                ),
                scheduling.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic="Maximum", label="schedule DLQ"
                ),
            ],
            right=[self.metric("MessagesDeadLettered", label="dead-lettered (consumer)")],
            width=12,
        )
        lambda_errors = cloudwatch.GraphWidget(
            title="Lambda errors per function",
            left=[fn.metric_errors(period=ONE_MINUTE, label=name) for name, fn in functions.items()],
            width=8,
        )
        lambda_throttles = cloudwatch.GraphWidget(
            title="Lambda throttles per function",
            left=[fn.metric_throttles(period=ONE_MINUTE, label=name) for name, fn in functions.items()],
            width=8,
        )
        lambda_concurrency = cloudwatch.GraphWidget(
            title="Lambda concurrency per function (max)",
            left=[
                fn.metric("ConcurrentExecutions", period=ONE_MINUTE, statistic="Maximum", label=name)
                for name, fn in functions.items()
            ],
            width=8,
        )
        api_errors = cloudwatch.GraphWidget(
            title="API 4xx / 5xx per minute",
            left=[
                api.http_api.metric_client_error(period=ONE_MINUTE, statistic="Sum", label="4xx"),
                api.http_api.metric_server_error(period=ONE_MINUTE, statistic="Sum", label="5xx"),
            ],
            width=12,
        )
        api_latency = cloudwatch.GraphWidget(
            title="API latency, ms",
            left=[
                api.http_api.metric_latency(period=ONE_MINUTE, statistic="p50", label="p50"),
                api.http_api.metric_latency(period=ONE_MINUTE, statistic="p99", label="p99"),
            ],
            width=12,
        )
        cost = cloudwatch.GraphWidget(
            title="Message cost per day, USD (status webhooks priced by provider or price table)",
            left=[self.metric("MessageCost", period=ONE_DAY, label="cost")],
            width=12,
            period=ONE_DAY,
        )
        status_webhooks = cloudwatch.GraphWidget(
            title="Status webhooks: statuses per minute, request latency (ms)",
            left=[self.metric("StatusesReceived", label="statuses received")],
            right=[
                self.metric("WebhookLatency", statistic="p50", label="latency p50"),
                self.metric("WebhookLatency", statistic="p99", label="latency p99"),
            ],
            width=12,
        )
        sync_period = cdk.Duration.minutes(account_sync.settings.interval_minutes)
        account_sync_widget = cloudwatch.GraphWidget(
            title=(
                f"Account sync: accounts synced and not synced per pass ({account_sync.settings.interval_minutes} min)"
            ),
            left=[
                self.metric("AccountsSynced", period=sync_period, label="synced"),
                self.metric("AccountSyncFailed", period=sync_period, label="not synced"),
            ],
            right=[
                cloudwatch.MathExpression(
                    expression=self.per_account_search("AccountSyncFailed", "Sum", sync_period),
                    label="",
                    period=sync_period,
                )
            ],
            width=24,
            period=sync_period,
        )
        return [
            [alarm_status],
            [sends, failures_by_class],
            [latency, backlog],
            [planner, dead_letters],
            [lambda_errors, lambda_throttles, lambda_concurrency],
            [api_errors, api_latency],
            [status_webhooks, cost],
            [account_sync_widget],
        ]
