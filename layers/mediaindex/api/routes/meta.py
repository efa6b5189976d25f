"""Health, usage, capabilities and the OpenAPI document under /v1."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mediaindex import __version__
from mediaindex.api.deps import ServicesDep, TenantId
from mediaindex.api.lazy_routes import LazyRoute
from mediaindex.api.schemas.meta import Availability, Capabilities, Health, SearchOptions, Usage
from mediaindex.api.schemas.quotas import QuotaUseOut
from mediaindex.domain.models import ALL_FEATURES
from mediaindex.ml.availability import unavailable_modalities
from mediaindex.services.usage import stored_bytes
from mediaindex.settings import Settings

router = APIRouter(prefix="/v1", tags=["meta"], route_class=LazyRoute)


@router.get(
    "/health",
    response_model=Health,
    summary="Check the server is up",
    description="Answers without a key: the version and the runtime (`local` or `aws`).",
)
def health(services: ServicesDep) -> Health:
    return Health(status="ok", version=__version__, runtime=services.settings.runtime)


@router.get(
    "/usage",
    response_model=Usage,
    summary="Count what this tenant stores",
    description="Assets and bytes by media type, and how often each feature ran, for the key's tenant.",
)
def usage(services: ServicesDep, tenant_id: TenantId) -> Usage:
    counted = services.usage.usage(tenant_id)
    _, uses = services.quotas.uses(tenant_id, stored_bytes=stored_bytes(counted))
    return Usage(**counted, quotas=[QuotaUseOut(**u.model_dump()) for u in uses])


def unavailable_search_options(settings: Settings) -> dict[str, str]:
    """`search_options` that cannot work here, each with why. With the encoder Lambda (AWS) the
    query models are that function's: the stack tells this one whether it carries CLIP."""
    if settings.runtime == "aws" and settings.query_encoder_function:
        if settings.encoder_visual:
            return {}
        return {"visual": "the query encoder has no CLIP model (deploy with the `clip` context set)"}
    return unavailable_modalities(settings)


@router.get(
    "/capabilities",
    response_model=Capabilities,
    summary="What this server can do now",
    description="Which search options can find anything here (visual search needs a CLIP model), "
    "the features the pipeline runs, and the version. Read from configuration: no model is loaded.",
)
def capabilities(services: ServicesDep, tenant_id: TenantId) -> Capabilities:
    missing = unavailable_search_options(services.settings)

    def option(name: str) -> Availability:
        return Availability(available=name not in missing, reason=missing.get(name))

    return Capabilities(
        search_options=SearchOptions(visual=option("visual"), transcription=option("transcription")),
        features=[f.value for f in ALL_FEATURES],
        transcription_models=services.reindex.offered(),
        default_transcription_model=services.settings.whisper_model,
        version=__version__,
    )


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema
