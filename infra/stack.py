"""The wabacast stack: composes one construct per capability and exposes them for the next ones to use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.capabilities.account_sync import AccountSync, AccountSyncSettings
from infra.capabilities.api import Api, ApiSettings
from infra.capabilities.console import Console
from infra.capabilities.data import DataStore
from infra.capabilities.delivery import Delivery, DeliverySettings
from infra.capabilities.monitoring import Monitoring, MonitoringSettings
from infra.capabilities.names import Names
from infra.capabilities.runtime import LambdaRuntime
from infra.capabilities.scheduling import Scheduling, SchedulingSettings
from infra.capabilities.webhooks import Webhooks
from infra.paths import CONSOLE_DIR, FUNCTIONS_DIR


class WabacastStack(cdk.Stack):
    """Everything wabacast runs on.

    `layer_dir` is the folder built by infra/build_layer.py (it holds `python/`); `functions_dir` holds one folder
    per code asset (`api/`, `planner/`, `sender/`, `scheduler/`: the scheduler and the account sync). Tests pass
    small temporary folders for both.
    `console_dir` is the web console's folder (console/).
    `delivery_settings` defaults to the production values with the provider URLs and the sender's reserved
    concurrency from the CDK context (`sandboxBaseUrl`, `metaBaseUrl`, `senderReservedConcurrency`);
    `monitoring_settings` to the alarm e-mail of the context (`alarmEmail`). `names` is the environment's (dev or
    prod): every name the stack and its functions create carries it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layer_dir: Path,
        names: Names,
        functions_dir: Path = FUNCTIONS_DIR,
        console_dir: Path = CONSOLE_DIR,
        api_settings: ApiSettings | None = None,
        delivery_settings: DeliverySettings | None = None,
        scheduling_settings: SchedulingSettings | None = None,
        monitoring_settings: MonitoringSettings | None = None,
        account_sync_settings: AccountSyncSettings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.names = names
        cdk.Tags.of(self).add("wabacast:env", names.environment)

        self.data = DataStore(self, "Data")
        self.runtime = LambdaRuntime(self, "Runtime", layer_dir=layer_dir, functions_dir=functions_dir, names=names)
        self.delivery = Delivery(
            self,
            "Delivery",
            runtime=self.runtime,
            data=self.data,
            settings=delivery_settings or DeliverySettings.from_context(self.node),
        )
        self.scheduling = Scheduling(
            self,
            "Scheduling",
            runtime=self.runtime,
            data=self.data,
            delivery=self.delivery,
            settings=scheduling_settings,
        )
        self.account_sync = AccountSync(
            self,
            "AccountSync",
            runtime=self.runtime,
            data=self.data,
            delivery=self.delivery,
            scheduling=self.scheduling,
            settings=account_sync_settings,
        )
        # The console's distribution first: the API's CORS names its origin; its files come last, with the API's URL.
        self.console = Console(
            self, "Console", console_dir=console_dir, log_retention=self.runtime.log_retention, names=names
        )
        self.api = Api(
            self,
            "Api",
            runtime=self.runtime,
            data=self.data,
            delivery=self.delivery,
            scheduling=self.scheduling,
            settings=api_settings,
            allowed_origins=(self.console.origin,),
        )
        self.console.publish(api_url=self.api.url, api_origin=self.api.http_api.api_endpoint)
        self.webhooks = Webhooks(self, "Webhooks", api=self.api, delivery=self.delivery)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            names=names,
            delivery=self.delivery,
            scheduling=self.scheduling,
            api=self.api,
            account_sync=self.account_sync,
            settings=monitoring_settings or MonitoringSettings.from_context(self.node),
        )

        cdk.CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the HTTP API (ends with /)")
        cdk.CfnOutput(
            self, "ConsoleUrl", value=f"{self.console.origin}/", description="The web console (sign in with an API key)"
        )
        cdk.CfnOutput(self, "TableName", value=self.table.table_name, description="The DynamoDB table")
        cdk.CfnOutput(
            self,
            "PlannerFunctionName",
            value=self.delivery.planner.function_name,
            description="The planner tick (every minute, EventBridge Scheduler): dispatches accounts to the plan queue",
        )
        cdk.CfnOutput(
            self,
            "PlanWorkerFunctionName",
            value=self.delivery.plan_worker.function_name,
            description="The plan worker (plans one account per message of the plan queue)",
        )
        cdk.CfnOutput(
            self,
            "PlanDeadLetterQueueUrl",
            value=self.delivery.plan_dead_letter_queue.queue_url,
            description="Plan requests (one account each) the plan worker failed on 3 times",
        )
        cdk.CfnOutput(
            self,
            "SenderFunctionName",
            value=self.delivery.sender.function_name,
            description=(
                f"The sender (event source mappings on the account queues {names.queue_name_prefix}-<accountId>.fifo)"
            ),
        )
        cdk.CfnOutput(
            self,
            "DeadLetterFunctionName",
            value=self.delivery.dead_letter_function.function_name,
            description=f"The dead-letter consumer (mappings on {names.queue_name_prefix}-<accountId>-dlq.fifo)",
        )
        cdk.CfnOutput(
            self,
            "ScheduleGroupName",
            value=self.scheduling.group.ref,
            description="The EventBridge Scheduler group: the planner tick, and one schedule per scheduled or "
            "recurring queue",
        )
        cdk.CfnOutput(
            self,
            "SchedulerFunctionName",
            value=self.scheduling.function.function_name,
            description="The scheduler (starts a scheduled or recurring queue when its schedule fires)",
        )
        cdk.CfnOutput(
            self,
            "AccountSyncFunctionName",
            value=self.account_sync.function.function_name,
            description="The account sync (every 15 minutes, EventBridge Scheduler): every account's quality, tier "
            "and templates read from its provider",
        )
        cdk.CfnOutput(
            self,
            "ScheduleDeadLetterQueueUrl",
            value=self.scheduling.dead_letter_queue.queue_url,
            description="Schedule firings EventBridge Scheduler could not deliver (ticks, queue starts), and queue "
            "starts the scheduler function failed on",
        )

        # What `python -m wabacast_ops.resources --stack-name <stack>` reads to find, repair and remove what the API
        # creates at run time (account queues, their mappings and secrets): the same values the functions get.
        runtime_outputs = {
            "QueueNamePrefix": (names.queue_name_prefix, "Account queues are <prefix>-<accountId>.fifo and -dlq.fifo"),
            "SecretsPrefix": (names.secrets_prefix, "Account secrets are <prefix>/<businessId>/accounts/<accountId>"),
            "SenderFunctionArn": (self.delivery.sender.function_arn, "What the account queue mappings invoke"),
            "DeadLetterFunctionArn": (
                self.delivery.dead_letter_function.function_arn,
                "What the account dead-letter queue mappings invoke",
            ),
            "SenderBatchSeconds": (
                str(self.delivery.settings.sender_batch_seconds),
                "SENDER_BATCH_S: sizes each sender mapping's MaximumConcurrency",
            ),
        }
        for output_id, (value, description) in runtime_outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=description)

        cdk.CfnOutput(
            self, "DashboardName", value=self.monitoring.dashboard_name, description="The CloudWatch dashboard"
        )
        cdk.CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.monitoring.alarm_topic.topic_arn,
            description="SNS topic every alarm notifies (subscribe more endpoints to it)",
        )
        cdk.CfnOutput(self, "Environment", value=names.environment, description="dev or prod")

    @property
    def table(self) -> dynamodb.Table:
        return self.data.table
