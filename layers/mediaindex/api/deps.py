"""FastAPI dependencies as `Annotated` aliases, so tests can swap them with dependency_overrides.

Dependencies that only read the request are `async def`: FastAPI runs a plain `def` dependency on
the thread pool, a hop (two thread switches) that costs more than their work. Those that call a
store (`authenticate`) stay plain, so a slow store never holds the event loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from mediaindex.api.middleware import presented_key
from mediaindex.domain.keys import check_scope
from mediaindex.domain.search import MAX_ID_LEN
from mediaindex.services.bundle import Services
from mediaindex.services.idempotency import Rebuild, request_fingerprint


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


# The two ways a key is sent, as OpenAPI security schemes: every route that authenticates lists
# them, and /docs shows its Authorize button. The key itself is read by `presented_key`, as the body
# guard reads it, so these never refuse anything themselves.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="An API key (`mi_...`, printed by `make run` or `mediaindex keys create`) as "
    "`Authorization: Bearer <key>`.",
)
X_API_KEY = APIKeyHeader(
    name="x-api-key",
    auto_error=False,
    scheme_name="apiKeyHeader",
    description="The same API key in an `x-api-key` header, for clients that cannot set Authorization.",
)


def authenticate(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    x_api_key: Annotated[str | None, Security(X_API_KEY)],
) -> str:
    # A request with a body was authenticated by the body guard before its body was read.
    key = getattr(request.state, "api_key", None)
    if key is None:
        key = services.keys.authenticate(presented_key(request.headers.get("authorization"), x_api_key))
    request.state.key_id = key.id
    # The route's own path (`/v1/keys/{key_id}`), whatever prefix a gateway put before it.
    route = request.scope.get("route")
    path = str(getattr(route, "path", request.url.path))
    check_scope(key.scope, request.method, path)
    services.quotas.admit(key.tenant_id, request.method, path)
    return key.tenant_id


TenantId = Annotated[str, Depends(authenticate)]


async def caller_key_id(request: Request, tenant_id: TenantId) -> str:
    """The id of the key the request was authenticated with."""
    key_id: str = request.state.key_id
    return key_id


CallerKeyId = Annotated[str, Depends(caller_key_id)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")]
# Ids are short: a longer one cannot exist, and would only reach the store (DynamoDB refuses keys
# over 1-2 KB with a ValidationException, a 500).
IdPath = Annotated[str, Path(max_length=MAX_ID_LEN)]
Cursor = Annotated[str | None, Query(max_length=2048, description="Opaque cursor from next_cursor.")]


async def raw_body(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        return b""  # form bodies are fingerprinted from their parsed fields instead
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Replays the first response for the same key and body."),
]


def respond(
    services: Services,
    request: Request,
    tenant_id: str,
    idem_key: str | None,
    body: bytes,
    status: int,
    execute: Any,
    rebuild: Rebuild | None = None,
) -> JSONResponse:
    """Runs a POST once per Idempotency-Key. `execute()` returns the response model; `rebuild`
    keeps only ids in the record and makes the replay from them (services.idempotency)."""

    def run() -> tuple[int, Any]:
        # sqlalchemy_safe off: its default drops every dict key starting with "_sa", user metadata too.
        return status, jsonable_encoder(execute(), sqlalchemy_safe=False)

    if idem_key is None:
        code, payload = run()
        return JSONResponse(payload, status_code=code)
    fp = request_fingerprint(request.method, request.url.path, body)
    code, payload, replayed = services.idempotency.run(tenant_id, idem_key, fp, run, rebuild=rebuild)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(payload, status_code=code, headers=headers)


@dataclass(frozen=True)
class IdempotentPost:
    """A POST that runs once per Idempotency-Key: its route calls `respond(status, execute)`."""

    services: Services
    request: Request
    tenant_id: str
    key: str | None
    body: bytes

    def respond(self, status: int, execute: Callable[[], Any]) -> JSONResponse:
        return respond(self.services, self.request, self.tenant_id, self.key, self.body, status, execute)


async def idempotent_post(
    request: Request, services: ServicesDep, tenant_id: TenantId, raw: RawBody, idem: IdempotencyKey = None
) -> IdempotentPost:
    return IdempotentPost(services, request, tenant_id, idem, raw)


IdempotentPostDep = Annotated[IdempotentPost, Depends(idempotent_post)]
