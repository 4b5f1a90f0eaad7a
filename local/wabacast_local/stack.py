"""The local stack: the cloud architecture rebuilt in one process, with moto standing in for AWS.

`LocalStack.start()` brings the pieces up in dependency order and `stop()` takes them down in reverse. A piece that
runs in the background (the emulator, the sandbox provider, the HTTP listener, the SQS pollers playing Lambda's
event source mappings, the ticker and the emulator playing EventBridge Scheduler) is a `Component`; register it with
`self._start(...)` and it is stopped for you, also when a later step of the startup fails.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import boto3
from botocore.config import Config

from wabacast.bootstrap import create_resources, issue_admin_key
from wabacast.settings import Settings
from wabacast_local.console_site import ConsoleSite, default_console_dir
from wabacast_local.emulator import MotoEmulator
from wabacast_local.event_sources import (
    DynamoDbAccountLookup,
    FixedQueueMapping,
    MappingState,
    SqsEventSourceMappings,
    SqsQueueMapping,
)
from wabacast_local.http_api import HttpApi, LambdaAuthorizer, LambdaInvoker, Route
from wabacast_local.http_server import HttpApiServer
from wabacast_local.lambda_runtime import LOCAL_ACCOUNT_ID, FunctionConfig, LocalLambdaFunction, ScalingLambdaFunction
from wabacast_local.moto_fixes import install_all as install_moto_fixes
from wabacast_local.sandbox_provider import SandboxCallbacks, SandboxProvider, SandboxSettings, SandboxStartupError
from wabacast_local.scheduler import ACCOUNT_SYNC_EVENT, TICK_EVENT, ScheduleTicker
from wabacast_local.scheduler_emulator import SchedulerEmulator
from wabacast_local.seed import create_demo_business
from wabacast_local.state import StateFile

LOGGER = logging.getLogger(__name__)

# Fake credentials: moto accepts anything, and real ones must never be picked up by a local run.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# Settings from the developer's shell that could send a local run to a real account or another endpoint.
_FOREIGN_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)

# Cloud-only wiring (wabacast.settings): with these set, the functions would create event source mappings and invoke
# the planner through the Lambda API. Locally they stay unset: the runner plays the mappings and the schedule.
_CLOUD_ONLY_VARIABLES = ("SENDER_FUNCTION_ARN", "DEAD_LETTER_FUNCTION_ARN", "PLANNER_FUNCTION_NAME")


class StartupError(RuntimeError):
    """A startup failure with a cause the message fully explains (no traceback needed)."""


def default_functions_dir() -> Path:
    """`functions/` of the checkout this package is installed from (the install is editable: `pip install -e`)."""
    return Path(__file__).resolve().parents[2] / "functions"


@dataclass(frozen=True)
class LocalStackConfig:
    host: str = "127.0.0.1"
    port: int = 3000
    state_dir: Path = Path(".wabacast")
    # Cloud: 60 s. Locally 0, so a revoked or rotated key stops working at once.
    authorizer_cache_ttl_seconds: float = 0.0
    table_name: str = "wabacast-local"
    secrets_prefix: str = "wabacast"
    region: str = "us-east-1"
    functions_dir: Path = field(default_factory=default_functions_dir)
    # The web console's static files, served on every path outside /api.
    console_dir: Path = field(default_factory=default_console_dir)
    # Delivery (wabacast.settings; the cloud values are in infra/capabilities/delivery.py).
    queue_name_prefix: str = "wabacast"
    # Cloud: 60 s of an account's rate on its SQS queue at a time. Locally 5, so pause/cancel/priority act at once.
    feed_window_seconds: float = 5.0
    # Cloud: 900 s before a QUEUED job that never reached a sender is fed again.
    requeue_after_seconds: float = 120.0
    max_rate_wait_seconds: float = 20.0
    # Cloud: the planner's schedule is rate(1 minute).
    planner_tick_seconds: float = 1.0
    # Cloud: the account sync's schedule is rate(15 minutes); the same here unless told (--account-sync-seconds).
    account_sync_seconds: float = 900.0
    # How often the runner looks for new account queues to map (the cloud maps them when the API creates them).
    queue_discovery_seconds: float = 2.0
    # EventBridge Scheduler: the group the functions create their schedules in, the dead-letter queue they give
    # them, and how often the emulator looks for due schedules (the cloud fires within the minute).
    schedule_group_name: str = "wabacast-local"
    schedule_dlq_name: str = "wabacast-schedules-dlq"
    scheduler_poll_seconds: float = 0.5
    # Concurrent API requests (status webhooks above all) each get an execution environment of their own, as Lambda
    # scales out, up to this many; so a burst of webhooks does not hold up a console's or a client's request.
    api_environments: int = 6
    # Print the functions' EMF metric lines (CloudWatch turns them into metrics; locally they are only noise).
    show_metrics: bool = False
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)


@dataclass(frozen=True)
class StackEndpoints:
    """What a developer needs to use the running stack (also written to local.json)."""

    api_url: str
    admin_api_key: str
    api_key: str
    demo_business_id: str
    aws_endpoint_url: str
    sandbox_url: str | None = None

    @property
    def docs_url(self) -> str:
        return f"{self.api_url}/api/docs"

    @property
    def console_url(self) -> str:
        return f"{self.api_url}/"


class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


ComponentT = TypeVar("ComponentT", bound=Component)


# As infra/capabilities/delivery.py's plan worker mapping, scaled to one machine.
PLAN_WORKER_CONCURRENCY = 4

# The function the API's schedules target, and the role they pass. Locally nothing assumes the role; both only need
# to be well formed (the emulator finds the function by the name in the ARN).
SCHEDULER_FUNCTION_NAME = "wabacast-scheduler"
ACCOUNT_SYNC_FUNCTION_NAME = "wabacast-account-sync"
WEBHOOK_SECRET_NAME = "wabacast/local-webhooks"  # noqa: S105 - the secret's name, not its value
SCHEDULER_ROLE_NAME = "wabacast-scheduler-invoke"


def scheduler_target_arn(region: str) -> str:
    return FunctionConfig(name=SCHEDULER_FUNCTION_NAME, region=region).arn


def scheduler_role_arn() -> str:
    return f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{SCHEDULER_ROLE_NAME}"


def lambda_environment(
    config: LocalStackConfig, aws_endpoint_url: str, sandbox_url: str | None = None
) -> dict[str, str]:
    """The environment the functions get in the cloud, pointed at the emulator (and the sandbox provider).

    SENDER_FUNCTION_ARN, DEAD_LETTER_FUNCTION_ARN and PLANNER_FUNCTION_NAME are left out on purpose: the runner
    plays the event source mappings and the schedule itself (see event_sources.py and scheduler.py).
    """
    environment = {
        "TABLE_NAME": config.table_name,
        "SECRETS_PREFIX": config.secrets_prefix,
        "AWS_ENDPOINT_URL": aws_endpoint_url,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        **LOCAL_CREDENTIALS,
        # No shared config or instance metadata either: nothing outside this process decides where calls go.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "wabacast",
        "POWERTOOLS_METRICS_NAMESPACE": "wabacast",
        # Powertools prints nothing on flush when this is true (metrics/functions.py: is_metrics_disabled).
        "POWERTOOLS_METRICS_DISABLED": "false" if config.show_metrics else "true",
        "QUEUE_NAME_PREFIX": config.queue_name_prefix,
        "FEED_WINDOW_S": f"{config.feed_window_seconds:g}",
        "REQUEUE_AFTER_S": f"{config.requeue_after_seconds:g}",
        "MAX_RATE_WAIT_S": f"{config.max_rate_wait_seconds:g}",
        "SCHEDULE_GROUP_NAME": config.schedule_group_name,
        "SCHEDULER_TARGET_ARN": scheduler_target_arn(config.region),
        "SCHEDULER_ROLE_ARN": scheduler_role_arn(),
        # Created at start (create_webhook_secret), as the CDK stack's Webhooks construct makes its secret.
        "WEBHOOK_SECRET_NAME": WEBHOOK_SECRET_NAME,
    }
    if sandbox_url is not None:
        environment["SANDBOX_BASE_URL"] = sandbox_url
        # The local stack is the one place where the API creates sandbox accounts (Settings.allow_sandbox_accounts).
        environment["ALLOW_SANDBOX_ACCOUNTS"] = "true"
    return environment


def apply_lambda_environment(environ: MutableMapping[str, str], variables: dict[str, str]) -> None:
    foreign = [*_FOREIGN_AWS_VARIABLES, *_CLOUD_ONLY_VARIABLES]
    for name in [*foreign, *(key for key in environ if key.startswith("AWS_ENDPOINT_URL_"))]:
        environ.pop(name, None)
    environ.update(variables)


def api_routes(api: LambdaInvoker, authorizer: LambdaAuthorizer) -> list[Route]:
    """The routes of the cloud HTTP API (infra/capabilities/api.py, webhooks.py): the API description and the
    signed provider webhooks are public, everything else goes through the authorizer. No CORS configuration in the
    cloud, so none here: OPTIONS is an ANY request."""
    return [
        Route("GET", "/api/openapi.json", api),
        Route("GET", "/api/docs", api),
        Route("GET", "/api/webhooks/meta", api),
        Route("POST", "/api/webhooks/meta", api),
        Route("POST", "/api/webhooks/twilio/{accountId}", api),
        Route("ANY", "/api/{proxy+}", api, authorizer),
    ]


def create_webhook_secret(region: str) -> dict[str, str]:
    """The stack's webhook secret, generated per run: the Meta verify token, and a stack-level Meta app secret
    (sandbox accounts have no app secret of their own, so their signed webhooks are checked with this one)."""
    value = {"metaVerifyToken": secrets.token_urlsafe(24), "metaAppSecret": secrets.token_hex(16)}
    client = boto3.client("secretsmanager", region_name=region)
    try:
        client.create_secret(Name=WEBHOOK_SECRET_NAME, SecretString=json.dumps(value))
    except client.exceptions.ResourceExistsException:
        # moto's backends live as long as the process: a stack started again in it finds the previous secret.
        client.put_secret_value(SecretId=WEBHOOK_SECRET_NAME, SecretString=json.dumps(value))
    return value


class LocalStack:
    def __init__(self, config: LocalStackConfig) -> None:
        self.config = config
        self.state = StateFile(config.state_dir)
        self._components: list[Component] = []
        self._owns_state_file = False

    def start(self) -> StackEndpoints:
        """Start everything; on failure, stop what was started and re-raise."""
        try:
            return self._start_all()
        except BaseException:
            self.stop()
            raise

    def _start_all(self) -> StackEndpoints:
        # Each step needs the ones before it; everything in the background is registered with self._start so that
        # stop() stops it (in reverse: the pollers and the ticker first, the emulator last).
        api_code_root = self._check_function_code()
        # Several senders, the planner and the API write at once: moto's DynamoDB needs a lock (see moto_fixes).
        install_moto_fixes()
        emulator = self._start(MotoEmulator())
        # Before the functions' environment: its URL is their SANDBOX_BASE_URL.
        try:
            sandbox = self._start(SandboxProvider(self.config.sandbox))
        except SandboxStartupError as error:
            raise StartupError(str(error)) from None
        settings = self._configure_functions_environment(emulator.endpoint_url, sandbox.url)
        # The same table definition as the CDK stack (wabacast.storage.table), created by the shared bootstrap.
        create_resources(settings)
        webhook_secret = create_webhook_secret(settings.region)
        plan_queue_url, plan_queue_arn = self._create_plan_queue(settings)
        schedule_dlq_arn = self._create_schedule_resources(settings)
        http_api = self._build_http_api(api_code_root)
        planner, plan_worker, sender, dead_letter = self._load_delivery_functions()
        scheduler_function = self._load_scheduler_function()
        account_sync = self._load_account_sync_function()
        server = self._start(
            HttpApiServer(http_api, self.config.host, self.config.port, console=ConsoleSite(self.config.console_dir))
        )
        # Only once the port is ours: a second stack that fails to bind must not hide the first one's file.
        # The previous run's file is stale anyway, its keys died with its in-memory emulator.
        self.state.remove()
        self._owns_state_file = True
        # Twilio sends ask for status callbacks under the API's URL (read by the sender on its first batch).
        apply_lambda_environment(os.environ, {"PUBLIC_BASE_URL": server.url})
        endpoints = self._seed(settings, server.url, emulator.endpoint_url, sandbox.url)
        # Now that the API listens: the sandbox posts signed status callbacks to its Meta webhook.
        if self.config.sandbox.callbacks:
            self._start(
                SandboxCallbacks(sandbox.server, f"{server.url}/api/webhooks/meta", webhook_secret["metaAppSecret"])
            )
        # Delivery runs from here on: the mappings poll the plan queue and the account queues, the schedule ticks the
        # planner, which hands each active account to the plan worker through the plan queue.
        self._start(
            FixedQueueMapping(
                SqsQueueMapping(
                    sqs=boto3.client("sqs", region_name=settings.region),
                    queue_url=plan_queue_url,
                    queue_arn=plan_queue_arn,
                    function=plan_worker,
                    region=settings.region,
                    state=MappingState(enabled=True, maximum_concurrency=PLAN_WORKER_CONCURRENCY),
                    batch_size=1,
                )
            )
        )
        self._start(self._event_source_mappings(settings, sender, dead_letter))
        self._start(
            ScheduleTicker(
                planner,
                interval_s=self.config.planner_tick_seconds,
                event=TICK_EVENT,
                quiet_idle_ticks_of=os.environ.get("POWERTOOLS_SERVICE_NAME", "wabacast"),
            )
        )
        # Every account read from its provider (the sandbox's emulation for sandbox accounts), as the cloud's
        # rate(15 minutes) schedule does; the first pass runs one interval after the start, as in the cloud.
        self._start(
            ScheduleTicker(
                account_sync,
                interval_s=self.config.account_sync_seconds,
                event=ACCOUNT_SYNC_EVENT,
                name="account-sync-schedule",
            )
        )
        # The schedules the functions create (queue starts, recurrences, limit resumes) fire from here on.
        targets = [planner, plan_worker, sender, dead_letter, scheduler_function]
        self._start(
            SchedulerEmulator(
                scheduler=boto3.client("scheduler", region_name=settings.region),
                sqs=boto3.client("sqs", region_name=settings.region),
                functions={function.config.arn: function for function in targets},
                group_name=self.config.schedule_group_name,
                poll_interval_s=self.config.scheduler_poll_seconds,
                # As the CDK stack: the scheduler function's failed asynchronous events go to the schedules' DLQ.
                on_failure_queues={SCHEDULER_FUNCTION_NAME: schedule_dlq_arn},
            )
        )
        self.state.update(
            {
                "apiUrl": endpoints.api_url,
                "docsUrl": endpoints.docs_url,
                "consoleUrl": endpoints.console_url,
                "adminApiKey": endpoints.admin_api_key,
                "apiKey": endpoints.api_key,
                "demoBusinessId": endpoints.demo_business_id,
                "awsEndpointUrl": endpoints.aws_endpoint_url,
                "sandboxUrl": endpoints.sandbox_url,
                # What Meta's callback setup asks for, and what signs the sandbox's webhooks (stack app secret).
                "metaVerifyToken": webhook_secret["metaVerifyToken"],
                "metaAppSecret": webhook_secret["metaAppSecret"],
                "region": self.config.region,
                "tableName": self.config.table_name,
                "scheduleGroupName": self.config.schedule_group_name,
                "pid": os.getpid(),
            }
        )
        return endpoints

    def _check_function_code(self) -> Path:
        """Fail before starting anything when the API code or the console is not where it should be."""
        if not (self.config.console_dir / "index.html").is_file():
            raise StartupError(f"{self.config.console_dir / 'index.html'} not found (see --console-dir)")
        api_code_root = self.config.functions_dir / "api"
        for handler_file in ("handler.py", "authorizer.py"):
            if not (api_code_root / handler_file).is_file():
                raise StartupError(f"{api_code_root / handler_file} not found (see --functions-dir)")
        return api_code_root

    def _configure_functions_environment(self, aws_endpoint_url: str, sandbox_url: str) -> Settings:
        # Before any handler module is loaded: handlers and boto3 read their settings from the process environment
        # (all functions share this process, so they share one environment, as they share one configuration).
        apply_lambda_environment(os.environ, lambda_environment(self.config, aws_endpoint_url, sandbox_url))
        return Settings.from_env()

    def _build_http_api(self, api_code_root: Path) -> HttpApi:
        """The API and authorizer functions (sizes as in infra/capabilities/api.py) behind the cloud's routes."""
        region = self.config.region
        api_function = ScalingLambdaFunction(
            FunctionConfig(name="wabacast-api", timeout_seconds=29, memory_limit_in_mb=1024, region=region),
            api_code_root / "handler.py",
            max_environments=self.config.api_environments,
        )
        authorizer_function = LocalLambdaFunction.from_file(
            FunctionConfig(name="wabacast-authorizer", timeout_seconds=10, memory_limit_in_mb=512, region=region),
            api_code_root / "authorizer.py",
        )
        authorizer = LambdaAuthorizer(authorizer_function, result_ttl_seconds=self.config.authorizer_cache_ttl_seconds)
        return HttpApi(routes=api_routes(api_function, authorizer), region=region)

    def _create_plan_queue(self, settings: Settings) -> tuple[str, str]:
        """The plan queue (a standard queue, as in infra/capabilities/delivery.py); its URL goes to the functions'
        environment as PLAN_QUEUE_URL before any handler reads its settings."""
        sqs = boto3.client("sqs", region_name=settings.region)
        url = sqs.create_queue(QueueName=f"{settings.queue_name_prefix}-plan")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        apply_lambda_environment(os.environ, {"PLAN_QUEUE_URL": url})
        return url, arn

    def _create_schedule_resources(self, settings: Settings) -> str:
        """The stack's schedule group and the schedules' dead-letter queue (a standard queue: Scheduler refuses a
        FIFO one); the queue's ARN goes to the functions' environment as SCHEDULE_DLQ_ARN."""
        boto3.client("scheduler", region_name=settings.region).create_schedule_group(
            Name=self.config.schedule_group_name
        )
        sqs = boto3.client("sqs", region_name=settings.region)
        url = sqs.create_queue(QueueName=self.config.schedule_dlq_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        apply_lambda_environment(os.environ, {"SCHEDULE_DLQ_ARN": arn})
        return arn

    def _load_scheduler_function(self) -> LocalLambdaFunction:
        """functions/scheduler/handler.py: the target of the queues' schedules."""
        return LocalLambdaFunction.from_file(
            FunctionConfig(
                name=SCHEDULER_FUNCTION_NAME, timeout_seconds=60, memory_limit_in_mb=256, region=self.config.region
            ),
            self.config.functions_dir / "scheduler" / "handler.py",
        )

    def _load_account_sync_function(self) -> LocalLambdaFunction:
        """functions/scheduler/account_sync.py: the periodic account sync (sizes as in
        infra/capabilities/account_sync.py)."""
        return LocalLambdaFunction.from_file(
            FunctionConfig(
                name=ACCOUNT_SYNC_FUNCTION_NAME, timeout_seconds=300, memory_limit_in_mb=512, region=self.config.region
            ),
            self.config.functions_dir / "scheduler" / "account_sync.py",
        )

    def _load_delivery_functions(
        self,
    ) -> tuple[LocalLambdaFunction, LocalLambdaFunction, LocalLambdaFunction, LocalLambdaFunction]:
        """The planner, the plan worker, the sender and the dead-letter consumer (sizes as in
        infra/capabilities/delivery.py)."""
        functions_dir, region = self.config.functions_dir, self.config.region
        planner_file = functions_dir / "planner" / "handler.py"
        plan_worker_file = functions_dir / "planner" / "worker.py"
        sender_file = functions_dir / "sender" / "handler.py"
        dead_letter_file = functions_dir / "sender" / "dead_letter.py"
        for handler_file in (planner_file, plan_worker_file, sender_file, dead_letter_file):
            if not handler_file.is_file():
                raise StartupError(f"{handler_file} not found (see --functions-dir)")
        planner = LocalLambdaFunction.from_file(
            FunctionConfig(name="wabacast-planner", timeout_seconds=300, memory_limit_in_mb=512, region=region),
            planner_file,
        )
        plan_worker = LocalLambdaFunction.from_file(
            FunctionConfig(name="wabacast-plan-worker", timeout_seconds=300, memory_limit_in_mb=512, region=region),
            plan_worker_file,
        )
        sender = LocalLambdaFunction.from_file(
            FunctionConfig(name="wabacast-sender", timeout_seconds=60, memory_limit_in_mb=512, region=region),
            sender_file,
        )
        dead_letter = LocalLambdaFunction.from_file(
            FunctionConfig(name="wabacast-dead-letter", timeout_seconds=60, memory_limit_in_mb=256, region=region),
            dead_letter_file,
        )
        return planner, plan_worker, sender, dead_letter

    def _event_source_mappings(
        self, settings: Settings, sender: LocalLambdaFunction, dead_letter: LocalLambdaFunction
    ) -> SqsEventSourceMappings:
        # Room for every poller, batch and delete of many account queues on one client, without urllib3 warnings.
        client_config = Config(max_pool_connections=100)
        return SqsEventSourceMappings(
            sqs=boto3.client("sqs", region_name=settings.region, config=client_config),
            queue_name_prefix=settings.queue_name_prefix,
            sender=sender,
            dead_letter=dead_letter,
            account_lookup=DynamoDbAccountLookup(
                boto3.client("dynamodb", region_name=settings.region), settings.table_name
            ),
            region=settings.region,
            discovery_interval_s=self.config.queue_discovery_seconds,
        )

    def _seed(self, settings: Settings, api_url: str, aws_endpoint_url: str, sandbox_url: str) -> StackEndpoints:
        """An admin key (an operator task, no API for it) and a demo business created through the API."""
        admin_api_key = issue_admin_key(settings, label="local stack")
        business = create_demo_business(api_url, admin_api_key)
        return StackEndpoints(
            api_url=api_url,
            admin_api_key=admin_api_key,
            api_key=business.api_key,
            demo_business_id=business.id,
            aws_endpoint_url=aws_endpoint_url,
            sandbox_url=sandbox_url,
        )

    def _start(self, component: ComponentT) -> ComponentT:
        LOGGER.debug("starting %s", component.name)
        component.start()
        self._components.append(component)
        return component

    def stop(self) -> None:
        """Stop components in reverse start order; one failing to stop does not keep the others running."""
        if self._owns_state_file:
            self.state.remove()
            self._owns_state_file = False
        while self._components:
            component = self._components.pop()
            try:
                component.stop()
            except Exception:
                LOGGER.exception("stopping %s failed", component.name)
