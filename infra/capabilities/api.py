"""API capability: the API and authorizer functions and the HTTP API in front of them.

Routes (with CORS for the console's origin only, when the stack has a console: API Gateway answers the preflight
requests itself and adds the CORS headers to the function's answers):
  ANY /api/{proxy+}      -> API function, behind the API-key Lambda authorizer (simple responses, cached 60 s by
                            default: ApiSettings.authorizer_cache_ttl_seconds, context authorizerCacheTtlSeconds)
  GET /api/openapi.json  -> API function, public (the OpenAPI document)
  GET /api/docs          -> API function, public (Swagger UI)

Besides the table and the account secrets, the API function provisions each WhatsApp account's delivery at run
time: its two FIFO queues (wabacast-<env>-<accountId>.fifo and its -dlq.fifo) and their event source mappings to
the sender and the dead-letter consumer (infra/capabilities/delivery.py), and it starts the planner when a queue is
processed. A queue that starts later or recurs gets an EventBridge Scheduler schedule in the stack's group, which
the API creates, moves and deletes (infra/capabilities/scheduling.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct, Node

from infra.capabilities.data import DataStore
from infra.capabilities.delivery import Delivery
from infra.capabilities.names import event_source_mappings_arn_pattern, nag_arn
from infra.capabilities.runtime import LambdaRuntime
from infra.capabilities.scheduling import Scheduling
from infra.nag import acknowledge, wildcard_resource_rule

CODE_FOLDER = "api"  # functions/api holds both handlers
API_HANDLER = "handler.lambda_handler"
AUTHORIZER_HANDLER = "authorizer.lambda_handler"
PROTECTED_ROUTE = "/api/{proxy+}"
PUBLIC_ROUTES = ("/api/openapi.json", "/api/docs")
AUTHORIZATION_HEADER = "$request.header.Authorization"
# What the console sends: the API key, and JSON bodies.
CORS_ALLOWED_HEADERS = ("authorization", "content-type")
CORS_ALLOWED_METHODS = (
    apigwv2.CorsHttpMethod.GET,
    apigwv2.CorsHttpMethod.POST,
    apigwv2.CorsHttpMethod.PUT,
    apigwv2.CorsHttpMethod.DELETE,
)
CORS_MAX_AGE = cdk.Duration.hours(1)

API_SECRET_ACTIONS = (
    "secretsmanager:CreateSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:TagResource",
)
AUTHORIZER_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
# Creating an account creates its queue and dead-letter queue (with tags and the redrive policy); deleting it
# deletes them.
API_QUEUE_ACTIONS = (
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:SetQueueAttributes",
    "sqs:TagQueue",
)
# Event source mappings, as Lambda authorizes them (Lambda developer guide, "Resources and conditions for Lambda
# actions"): Create on Resource "*" and Update/Delete on arn:...:event-source-mapping:<UUID>, all three with the
# lambda:FunctionArn condition key (the function the mapping invokes); Get/List on "*" with no condition key.
MAPPING_CREATE_ACTIONS = ("lambda:CreateEventSourceMapping",)
MAPPING_CHANGE_ACTIONS = ("lambda:DeleteEventSourceMapping", "lambda:UpdateEventSourceMapping")
MAPPING_READ_ACTIONS = ("lambda:GetEventSourceMapping", "lambda:ListEventSourceMappings")

# HTTP API context variables only, no request headers: the API key (Authorization header) is never logged.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "errorMessage": "$context.error.message",
}


# Context value (`cdk deploy -c authorizerCacheTtlSeconds=...`): how long API Gateway reuses an authorizer answer
# for the same Authorization header, which is also how long a revoked key keeps working (docs/operations.md).
AUTHORIZER_CACHE_TTL_CONTEXT = "authorizerCacheTtlSeconds"
AUTHORIZER_CACHE_TTL_MAX_SECONDS = 3600  # API Gateway's maximum


@dataclass(frozen=True)
class ApiSettings:
    """Tunables with production defaults; another environment can pass its own."""

    api_memory_mb: int = 1024
    api_timeout_seconds: int = 29  # HTTP API stops waiting for an integration after 30 s
    authorizer_memory_mb: int = 512
    authorizer_timeout_seconds: int = 10
    # The revocation delay: a revoked key is refused at most this long after its revocation. 0: no cache (every
    # request invokes the authorizer, one consistent DynamoDB read each).
    authorizer_cache_ttl_seconds: int = 60
    throttle_rate_limit: int = 100  # requests per second, steady state, for the whole stage
    throttle_burst_limit: int = 200

    @classmethod
    def from_context(cls, node: Node) -> ApiSettings:
        """The defaults, with the authorizer cache TTL from the CDK context value authorizerCacheTtlSeconds."""
        value: Any = node.try_get_context(AUTHORIZER_CACHE_TTL_CONTEXT)
        if value in (None, ""):
            return cls()
        # `-c authorizerCacheTtlSeconds=30` arrives as the string "30"; cdk.json holds a number.
        whole = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.strip().isdigit()
        )
        seconds = int(value) if whole else -1
        if not 0 <= seconds <= AUTHORIZER_CACHE_TTL_MAX_SECONDS:
            raise ValueError(
                f"The CDK context value {AUTHORIZER_CACHE_TTL_CONTEXT!r} must be whole seconds from 0 to "
                f"{AUTHORIZER_CACHE_TTL_MAX_SECONDS}, not {value!r}"
            )
        return cls(authorizer_cache_ttl_seconds=seconds)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """aws-cdk-lib has no concrete class for the IAccessLogSettings interface."""

    def __init__(self, destination: apigwv2.IAccessLogDestination, log_format: apigw.AccessLogFormat) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat | None:
        return self._format


class Api(Construct):
    """The API function (table, account secrets, queue schedules), the authorizer (API-key lookup) and the HTTP
    API."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: LambdaRuntime,
        data: DataStore,
        delivery: Delivery,
        scheduling: Scheduling,
        settings: ApiSettings | None = None,
        allowed_origins: tuple[str, ...] = (),
    ) -> None:
        """`allowed_origins`: the browser origins CORS lets call the API (the console's); none: no CORS."""
        super().__init__(scope, construct_id)
        self.runtime_names = runtime.names
        settings = settings or ApiSettings.from_context(self.node)
        stack = cdk.Stack.of(self)
        names = runtime.names
        table = data.table

        self.function = runtime.function(
            self,
            "ApiFunction",
            code_folder=CODE_FOLDER,
            handler=API_HANDLER,
            description="wabacast HTTP API",
            memory_mb=settings.api_memory_mb,
            timeout=cdk.Duration.seconds(settings.api_timeout_seconds),
            environment={
                "TABLE_NAME": table.table_name,
                "SECRETS_PREFIX": names.secrets_prefix,
                "QUEUE_NAME_PREFIX": names.queue_name_prefix,
                "SENDER_FUNCTION_ARN": delivery.sender.function_arn,
                "DEAD_LETTER_FUNCTION_ARN": delivery.dead_letter_function.function_arn,
                "PLANNER_FUNCTION_NAME": delivery.planner.function_name,
                # With the account's messages per second, sizes the MaximumConcurrency of its sender mapping.
                "SENDER_BATCH_S": str(delivery.settings.sender_batch_seconds),
                # Sandbox accounts are refused when it is not set.
                **delivery.settings.sandbox_environment,
                # One schedule per scheduled queue start and per recurring queue.
                **scheduling.environment,
            },
            other_wildcard_resource_statements=(
                "lambda:CreateEventSourceMapping, which has no resource type (IAM requires Resource '*'), is "
                "conditioned on lambda:FunctionArn being the sender or the dead-letter consumer of this stack; "
                "lambda:ListEventSourceMappings and lambda:GetEventSourceMapping (read-only; IAM supports only "
                "Resource '*' and no Lambda condition key for them) are limited to this region with "
                "aws:RequestedRegion. The API uses them to map each account's queues to those two functions when the "
                "account is created and to find those mappings again when it changes or is deleted."
            ),
        )
        self.function.add_to_role_policy(data.read_write_statement())
        self.secrets_arn_pattern = names.secrets_arn_pattern(stack)
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="AccountSecrets",
                actions=list(API_SECRET_ACTIONS),
                resources=[self.secrets_arn_pattern],
            )
        )
        assert self.function.role is not None
        acknowledge(
            self.function.role,
            wildcard_resource_rule(names.secrets_nag_resource),
            f"One secret per WhatsApp account, named {names.secrets_prefix}/{{businessId}}/accounts/{{accountId}} and "
            "created at run time when a tenant registers an account, so the names cannot be known at deploy time. "
            f"The wildcard is limited to the {names.secrets_prefix}/ prefix (this environment's) in this account and "
            "region.",
        )

        self._grant_account_delivery_provisioning(delivery)
        scheduling.grant_schedule_management(self.function)

        self.authorizer_function = runtime.function(
            self,
            "AuthorizerFunction",
            code_folder=CODE_FOLDER,
            handler=AUTHORIZER_HANDLER,
            description="wabacast API-key authorizer",
            memory_mb=settings.authorizer_memory_mb,
            timeout=cdk.Duration.seconds(settings.authorizer_timeout_seconds),
            environment={"TABLE_NAME": table.table_name},
        )
        self.authorizer_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ApiKeyLookup",
                actions=list(AUTHORIZER_TABLE_ACTIONS),
                resources=[table.table_arn],
            )
        )

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            description="wabacast: multi-tenant WhatsApp bulk messaging",
            create_default_stage=False,  # the stage below adds access logs and throttling
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(allowed_origins),
                allow_headers=list(CORS_ALLOWED_HEADERS),
                allow_methods=list(CORS_ALLOWED_METHODS),
                max_age=CORS_MAX_AGE,
            )
            if allowed_origins
            else None,
        )
        self.access_log_group = logs.LogGroup(self, "AccessLogs", retention=runtime.log_retention)
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            auto_deploy=True,
            access_log_settings=_AccessLogSettings(
                apigwv2.LogGroupLogDestination(self.access_log_group),
                apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
            ),
            throttle=apigwv2.ThrottleSettings(
                rate_limit=settings.throttle_rate_limit,
                burst_limit=settings.throttle_burst_limit,
            ),
        )

        integration = integrations.HttpLambdaIntegration("ApiIntegration", self.function)
        # Shared with routes other capabilities add (infra/capabilities/webhooks.py).
        self.integration = integration
        self.authorizer = authorizers.HttpLambdaAuthorizer(
            "ApiKeyAuthorizer",
            self.authorizer_function,
            response_types=[authorizers.HttpLambdaResponseType.SIMPLE],
            identity_source=[AUTHORIZATION_HEADER],
            results_cache_ttl=cdk.Duration.seconds(settings.authorizer_cache_ttl_seconds),
        )
        self.http_api.add_routes(
            path=PROTECTED_ROUTE,
            methods=[apigwv2.HttpMethod.ANY],
            integration=integration,
            authorizer=self.authorizer,
        )
        for path in PUBLIC_ROUTES:
            for route in self.http_api.add_routes(path=path, methods=[apigwv2.HttpMethod.GET], integration=integration):
                # Scoped to these two routes: any other route without an authorizer still fails cdk-nag.
                acknowledge(
                    route,
                    "AwsSolutions-APIG4",
                    "Public on purpose: the OpenAPI document and the Swagger UI page only describe the API and "
                    "return no tenant data; every other route goes through the API-key authorizer.",
                )

    def _grant_account_delivery_provisioning(self, delivery: Delivery) -> None:
        """The account queues and their event source mappings (created at run time), and starting the planner."""
        stack = cdk.Stack.of(self)
        names = self.runtime_names
        function = self.function
        assert function.role is not None
        mapped_function_arns = [f.function_arn for f in delivery.account_queue_functions]
        only_mapped_functions = {"ArnEquals": {"lambda:FunctionArn": mapped_function_arns}}

        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="AccountQueues",
                actions=list(API_QUEUE_ACTIONS),
                resources=[names.account_queues_arn_pattern(stack)],
            )
        )
        acknowledge(
            function.role,
            wildcard_resource_rule(names.queues_nag_resource),
            "The API creates (and, with the account, deletes) one FIFO queue and one FIFO dead-letter queue per "
            f"WhatsApp account, {names.queue_name_prefix}-<accountId>.fifo and {names.queue_name_prefix}-<accountId>"
            "-dlq.fifo, at run time when a tenant adds an account, so the names cannot be known at deploy time. The "
            f"wildcard is limited to the {names.queue_name_prefix}- prefix (this environment's) in this account and "
            "region.",
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="CreateAccountQueueMappings",
                actions=list(MAPPING_CREATE_ACTIONS),
                resources=["*"],  # no resource type: see MAPPING_CREATE_ACTIONS
                conditions=only_mapped_functions,
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ChangeAccountQueueMappings",
                actions=list(MAPPING_CHANGE_ACTIONS),
                resources=[event_source_mappings_arn_pattern(stack)],
                conditions=only_mapped_functions,
            )
        )
        acknowledge(
            function.role,
            wildcard_resource_rule(nag_arn("lambda", "event-source-mapping:*")),
            "Update/DeleteEventSourceMapping on the mappings of the account queues, created at run time (their "
            "UUIDs are assigned by Lambda then), and only for mappings whose function is this stack's sender or "
            "dead-letter consumer (condition lambda:FunctionArn).",
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadAccountQueueMappings",
                actions=list(MAPPING_READ_ACTIONS),
                resources=["*"],  # no condition key narrows these: see MAPPING_READ_ACTIONS
                conditions={"StringEquals": {"aws:RequestedRegion": stack.region}},
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="StartPlanner",
                actions=["lambda:InvokeFunction"],
                resources=[delivery.planner.function_arn],
            )
        )

    @property
    def url(self) -> str:
        """Base URL of the API (the `$default` stage), ending with `/`."""
        url = self.stage.url
        assert url is not None
        return url
