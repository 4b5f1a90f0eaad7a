"""Lambda runtime capability: the one shared layer and the one way every wabacast function is created.

Every function gets the same runtime and architecture (infra/lambda_platform.py: Python 3.12 on ARM64), the layer,
Powertools settings, active X-Ray tracing, its own log group with a retention, and its own role whose only built-in
permission is writing to that log group.
The API capability, the delivery capability (planner, sender, dead-letter consumer) and the scheduling capability
(scheduler) create their functions through `LambdaRuntime.function`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import lambda_platform
from infra.capabilities.names import METRICS_NAMESPACE, Names
from infra.nag import acknowledge, wildcard_resource_rule

RUNTIME = lambda_.Runtime(lambda_platform.runtime_name(), lambda_.RuntimeFamily.PYTHON)
ARCHITECTURE = lambda_.Architecture.custom(lambda_platform.ARCHITECTURE)


def powertools_environment(names: Names) -> dict[str, str]:
    """Powertools settings of every function; the service name (the metrics' `service` dimension) is per
    environment, so two environments in one account never mix their series."""
    return {
        "POWERTOOLS_SERVICE_NAME": names.service,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "LOG_LEVEL": "INFO",
    }


XRAY_WILDCARD_REASON = (
    "The statement CDK adds for active X-Ray tracing uses Resource '*': xray:PutTraceSegments and "
    "xray:PutTelemetryRecords support no resource-level permissions (tests/infra checks which statements of a "
    "function role use '*')."
)
DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_MONTH


class LambdaRuntime(Construct):
    """The shared layer (`layer_dir/python/...`, built by infra/build_layer.py) and a function factory.

    `functions_dir` holds one folder per code asset (e.g. `api/`), each shipped as is: the layer brings the
    dependencies and the `wabacast` package.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layer_dir: Path,
        functions_dir: Path,
        names: Names,
        log_retention: logs.RetentionDays = DEFAULT_LOG_RETENTION,
    ) -> None:
        super().__init__(scope, construct_id)
        self.names = names
        if not (layer_dir / "python").is_dir():
            raise ValueError(f"The Lambda layer folder {layer_dir / 'python'} does not exist: run `make layer` first")
        self.functions_dir = functions_dir
        self.log_retention = log_retention
        self._code: dict[str, lambda_.Code] = {}

        self.layer = lambda_.LayerVersion(
            self,
            "DependenciesLayer",
            code=lambda_.Code.from_asset(str(layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="wabacast: third-party dependencies and the wabacast package",
        )

    def code(self, folder: str) -> lambda_.Code:
        """The code asset `functions_dir/folder` (one asset, shared by every function using that folder)."""
        if folder not in self._code:
            path = self.functions_dir / folder
            if not path.is_dir():
                raise ValueError(f"The Lambda code folder {path} does not exist")
            self._code[folder] = lambda_.Code.from_asset(str(path), exclude=["__pycache__", "*.pyc"])
        return self._code[folder]

    def function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_folder: str,
        handler: str,
        description: str,
        memory_mb: int,
        timeout: cdk.Duration,
        environment: Mapping[str, str],
        other_wildcard_resource_statements: str | None = None,
        function_name: str | None = None,
        reserved_concurrent_executions: int | None = None,
    ) -> lambda_.Function:
        """A wabacast function in `scope`, with `{construct_id}Role` and `{construct_id}Logs` next to it.

        Grant it what it needs with `function.add_to_role_policy(...)`: the role starts with logs only.
        The role's cdk-nag acknowledgment of Resource '*' covers the X-Ray statement; a caller that adds another
        statement on '*' must say which and why in `other_wildcard_resource_statements` (it becomes part of the
        acknowledgment's reason, as the acknowledgment covers every '*' statement of the role).
        `function_name` fixes the function's name; without it CloudFormation generates one.
        """
        log_group = logs.LogGroup(scope, f"{construct_id}Logs", retention=self.log_retention)
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Role of the function: {description}",
        )
        # Instead of the AWSLambdaBasicExecutionRole managed policy (which allows writing to any log group).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        function = lambda_.Function(
            scope,
            construct_id,
            function_name=function_name,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self.code(code_folder),
            handler=handler,
            description=description,
            memory_size=memory_mb,
            timeout=timeout,
            layers=[self.layer],
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=reserved_concurrent_executions,
            environment={**powertools_environment(self.names), **environment},
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            f"{RUNTIME.name} on purpose (infra/lambda_platform.py): the shared layer is built from CPython "
            f"{lambda_platform.PYTHON_VERSION} manylinux wheels (infra/build_layer.py); a newer runtime means "
            "rebuilding the layer for it and re-testing, a deliberate upgrade rather than a side effect.",
        )
        reason = (
            f"{XRAY_WILDCARD_REASON} Besides it: {other_wildcard_resource_statements}"
            if other_wildcard_resource_statements
            else f"{XRAY_WILDCARD_REASON} No other statement of this role uses '*'."
        )
        acknowledge(role, wildcard_resource_rule("*"), reason)
        return function
