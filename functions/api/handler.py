"""API Lambda: the FastAPI app behind API Gateway (HTTP API, payload v2) through Mangum.

The app and its clients are built on the first invoke, not at import, so importing this module
stays cheap and nothing reaches AWS before a request does. Logs carry API Gateway's request id as
correlation id, and the app answers with the same id in `x-request-id` and error bodies."""

from __future__ import annotations

import gc
import os
from typing import TYPE_CHECKING, Any

# In a sandbox the first invoke imports and builds everything: the garbage collector's full passes
# in the middle of that only walk objects that live as long as the sandbox (two passes, ~100 ms of a
# cold start). Off before any other import (Powertools' own are the first), and on again, with
# those objects frozen out of it, once the app is built.
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    gc.disable()

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from mediaindex.bootstrap import Runtime

logger = Logger(service="mediaindex-api")
# No Powertools Tracer here: importing the X-Ray SDK cost about 0.4 s of every cold start, and the
# function's active tracing already records each invocation; the pipeline functions keep it.
metrics = Metrics(namespace="mediaindex", service="api")

_asgi_handler: Any = None


def configure(runtime: Runtime | None = None) -> Any:
    """Builds the Mangum handler over `runtime` (default: the runtime the environment names).
    Tests and local runs pass their own; the first invoke calls it with none."""
    global _asgi_handler
    from mangum import Mangum

    from mediaindex.bootstrap.app import build_app

    if runtime is None:
        from mediaindex.bootstrap import build_runtime
        from mediaindex.bootstrap.aws import lambda_settings

        runtime = build_runtime(lambda_settings())
    # lifespan off: a Lambda sandbox is frozen, never shut down, so there is nothing to close.
    _asgi_handler = Mangum(build_app(runtime, close_on_shutdown=False), lifespan="off")
    gc.freeze()
    gc.enable()
    return _asgi_handler


def _with_request_id(event: dict[str, Any]) -> dict[str, Any]:
    """Passes API Gateway's request id to the app as x-request-id unless the client sent one."""
    rid = (event.get("requestContext") or {}).get("requestId")
    headers = event.get("headers")
    if rid and isinstance(headers, dict) and "x-request-id" not in headers:
        event = {**event, "headers": {**headers, "x-request-id": rid}}
    return event


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    asgi = _asgi_handler or configure()
    response: dict[str, Any] = asgi(_with_request_id(event), context)
    status = int(response.get("statusCode", 500))
    metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=int(status >= 500))
    if status >= 500:
        logger.error("request failed", extra={"status": status, "path": event.get("rawPath")})
    return response
