"""Plays the Lambda service for one function: loads its handler by file path and invokes it like Lambda does.

Fidelity that matters to the handlers:
  - the handler module is loaded from its file, as Lambda does from the function's code root, under a unique module
    name so two functions with a `handler.py` never collide, and without putting the code root on `sys.path`;
  - the event and the result cross a JSON boundary, so a handler cannot receive or return anything Lambda could not;
  - invocations are serialized per function: one execution environment handles one event at a time, which is what
    makes module-level state (Powertools resolvers, cached clients) safe in the cloud;
  - the context object has the attributes Powertools reads (`function_name`, `aws_request_id`, ...).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Self

LOGGER = logging.getLogger(__name__)

LOCAL_ACCOUNT_ID = "123456789012"

Handler = Callable[[Any, Any], Any]


class FunctionError(Exception):
    """The function raised or returned something Lambda could not serialize (Lambda reports an `Unhandled` error)."""


@dataclass(frozen=True)
class FunctionConfig:
    """What the Lambda service knows about a function: enough to build a faithful context object."""

    name: str
    timeout_seconds: float = 30.0
    memory_limit_in_mb: int = 256
    region: str = "us-east-1"
    account_id: str = LOCAL_ACCOUNT_ID

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"


class LocalLambdaContext:
    """The context object passed to a handler; attribute names match the Python Lambda runtime's."""

    def __init__(self, config: FunctionConfig, request_id: str) -> None:
        self.function_name = config.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = config.arn
        self.memory_limit_in_mb = config.memory_limit_in_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{config.name}"
        self.log_stream_name = f"local/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline = time.monotonic() + config.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(handler_file: Path, function_name: str, handler_name: str = "lambda_handler") -> Handler:
    """Import `handler_file` as Lambda would and return its handler function.

    The module is registered in `sys.modules` under a name unique to the function (pydantic and dataclasses look
    their module up there), so `functions/api/handler.py` and another function's `handler.py` can coexist.
    """
    module_name = "wabacast_lambda_" + re.sub(r"\W", "_", f"{function_name}_{handler_file.stem}")
    spec = importlib.util.spec_from_file_location(module_name, handler_file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load a Python module from {handler_file}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    handler = getattr(module, handler_name, None)
    if not callable(handler):
        raise ImportError(f"{handler_file} has no callable {handler_name!r}")
    loaded: Handler = handler
    return loaded


@dataclass
class LocalLambdaFunction:
    """One Lambda function with a single execution environment."""

    config: FunctionConfig
    handler: Handler
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_file(cls, config: FunctionConfig, handler_file: Path, handler_name: str = "lambda_handler") -> Self:
        return cls(config=config, handler=load_handler(handler_file, config.name, handler_name))

    @property
    def name(self) -> str:
        return self.config.name

    def invoke(self, event: Any) -> Any:
        """Invoke synchronously (RequestResponse) and return the JSON-decoded result.

        Raises FunctionError when the handler raises or returns something that is not JSON, as Lambda would report
        a function error to its caller; the traceback is logged, as it would be in CloudWatch.
        """
        payload = json.dumps(event)
        with self._lock:
            context = LocalLambdaContext(self.config, request_id=str(uuid.uuid4()))
            started = time.monotonic()
            try:
                result = self.handler(json.loads(payload), context)
            except Exception as error:
                LOGGER.exception("function %s raised (request %s)", self.name, context.aws_request_id)
                raise FunctionError(f"{self.name} raised {type(error).__name__}") from error
            elapsed = time.monotonic() - started
        if elapsed > self.config.timeout_seconds:
            # The cloud would have killed the invocation; locally we cannot stop a thread, so say it loudly.
            LOGGER.warning(
                "function %s ran %.1f s, longer than its %.0f s timeout: in the cloud this invocation fails",
                self.name,
                elapsed,
                self.config.timeout_seconds,
            )
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as error:
            LOGGER.exception("function %s returned a result that is not JSON", self.name)
            raise FunctionError(f"{self.name} returned a result that is not JSON") from error


class ScalingLambdaFunction:
    """A function that concurrent callers invoke synchronously (API Gateway): as Lambda scales out, each concurrent
    request runs in an execution environment of its own.

    An environment is a fresh import of the handler file under a module name of its own, so its module-level state
    (the API's resolver, which holds the current event, its services and clients) belongs to it alone; the shared
    code (`wabacast`) is imported once. A request takes an idle environment, or a new one when all are busy, up to
    `max_environments`; beyond that it waits (where Lambda would throttle at the function's concurrency limit).
    """

    def __init__(
        self,
        config: FunctionConfig,
        handler_file: Path,
        *,
        max_environments: int,
        handler_name: str = "lambda_handler",
    ) -> None:
        self.config = config
        self._handler_file = handler_file
        self._handler_name = handler_name
        self._max_environments = max(1, max_environments)
        self._condition = threading.Condition()
        isolate_resolver_events()
        # The first environment is made now: an import error shows at startup, not on the first request.
        self._idle: list[LocalLambdaFunction] = [self._new_environment(0)]
        self._created = 1

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def environments(self) -> int:
        with self._condition:
            return self._created

    def invoke(self, event: Any) -> Any:
        environment = self._take()
        try:
            return environment.invoke(event)
        finally:
            with self._condition:
                self._idle.append(environment)
                self._condition.notify()

    def _take(self) -> LocalLambdaFunction:
        with self._condition:
            while not self._idle and self._created >= self._max_environments:
                self._condition.wait()
            if self._idle:
                return self._idle.pop()
            index = self._created
            self._created += 1
        # Imported outside the lock: a cold start does not hold up requests that find an idle environment.
        try:
            return self._new_environment(index)
        except BaseException:
            with self._condition:
                self._created -= 1
                self._condition.notify()
            raise

    def _new_environment(self, index: int) -> LocalLambdaFunction:
        module_owner = self.config.name if index == 0 else f"{self.config.name}-environment-{index}"
        return LocalLambdaFunction(self.config, load_handler(self._handler_file, module_owner, self._handler_name))


_isolation_lock = threading.Lock()
_isolated = False


def isolate_resolver_events() -> None:
    """Keep the event a Powertools resolver is resolving per thread.

    Powertools keeps it on a class attribute (`BaseRouter.current_event`), shared by every resolver in the process:
    right in Lambda, which never runs two events in one process, wrong here, where execution environments are
    threads of one process. Each thread gets its own event (read through `resolver.current_event`, which the
    resolver, its middlewares and wabacast's routes use). Installed once; idempotent.
    """
    global _isolated
    with _isolation_lock:
        if _isolated:
            return
        from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver

        state = threading.local()
        original_to_proxy_event = APIGatewayHttpResolver._to_proxy_event

        def to_proxy_event(self: APIGatewayHttpResolver, event: dict[str, Any]) -> Any:
            state.event = original_to_proxy_event(self, event)
            return state.event

        APIGatewayHttpResolver._to_proxy_event = to_proxy_event  # type: ignore[method-assign,assignment]
        APIGatewayHttpResolver.current_event = property(lambda _: state.event)  # type: ignore[assignment]
        _isolated = True
