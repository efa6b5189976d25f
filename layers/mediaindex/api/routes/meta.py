"""Health, usage and the OpenAPI document under /v1."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mediaindex import __version__
from mediaindex.api.deps import ServicesDep, TenantId
from mediaindex.api.schemas.meta import Health, Usage

router = APIRouter(prefix="/v1", tags=["meta"])


@router.get("/health", response_model=Health)
def health(services: ServicesDep) -> Health:
    return Health(status="ok", version=__version__, runtime=services.settings.runtime)


@router.get("/usage", response_model=Usage)
def usage(services: ServicesDep, tenant_id: TenantId) -> Usage:
    return Usage(**services.usage.usage(tenant_id))


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema
