"""/v1/keys: the tenant's API keys, managed with an `admin` key (domain/keys.py checks scopes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mediaindex.api.deps import CallerKeyId, IdPath, ServicesDep, TenantId
from mediaindex.api.schemas.base import ErrorBody
from mediaindex.api.schemas.keys import KeyCreate, KeyCreated, KeyList, KeyOut, KeyRotate
from mediaindex.api.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/keys", tags=["keys"], route_class=StrictJsonRoute)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}


@router.get(
    "",
    response_model=KeyList,
    summary="List API keys",
    description="The tenant's keys, revoked and expired ones included, without their secrets "
    "(a prefix and the last 4 characters tell them apart). Needs an `admin` key: others get 403 "
    "`scope_insufficient`.",
)
def list_keys(services: ServicesDep, tenant_id: TenantId) -> KeyList:
    return KeyList(data=[KeyOut.of(k) for k in services.keys.list_keys(tenant_id)])


@router.post(
    "",
    status_code=201,
    response_model=KeyCreated,
    responses={409: {"model": ErrorBody}},
    summary="Create an API key",
    description="A new key of the tenant, with a scope and an optional expiry. The answer holds the "
    "key itself, shown this once. At most 100 live keys per tenant (409 `key_limit_reached`).",
)
def create_key(body: KeyCreate, services: ServicesDep, tenant_id: TenantId) -> KeyCreated:
    key, raw = services.keys.create_tenant_key(
        tenant_id, scope=body.scope, name=body.name, expires_at=body.expires_at
    )
    return KeyCreated.made(key, raw)


@router.get(
    "/{key_id}",
    response_model=KeyOut,
    responses=NOT_FOUND,
    summary="Get an API key",
    description="One key of the tenant, without its secret.",
)
def get_key(key_id: IdPath, services: ServicesDep, tenant_id: TenantId) -> KeyOut:
    return KeyOut.of(services.keys.get_key(tenant_id, key_id))


@router.delete(
    "/{key_id}",
    response_model=KeyOut,
    responses={**NOT_FOUND, 409: {"model": ErrorBody}},
    summary="Revoke an API key",
    description="Refused from the next request on, on both runtimes (keys are never cached). "
    "Revoking a revoked key answers it again. The calling key cannot revoke itself "
    "(409 `key_is_caller`).",
)
def revoke_key(key_id: IdPath, services: ServicesDep, tenant_id: TenantId, caller: CallerKeyId) -> KeyOut:
    return KeyOut.of(services.keys.revoke(tenant_id, key_id, by_key_id=caller))


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    response_model=KeyCreated,
    responses={**NOT_FOUND, 409: {"model": ErrorBody}},
    summary="Rotate an API key",
    description="A new key with the old one's scope, name and expiry, shown this once. The old key "
    "keeps working for `overlap_s` seconds (default 24 h, at most 7 days), then is refused. A "
    "revoked or expired key cannot be rotated (409 `key_not_active`).",
)
def rotate_key(
    key_id: IdPath, services: ServicesDep, tenant_id: TenantId, body: KeyRotate | None = None
) -> KeyCreated:
    new, raw = services.keys.rotate(tenant_id, key_id, overlap_s=(body or KeyRotate()).overlap_s)
    return KeyCreated.made(new, raw)
