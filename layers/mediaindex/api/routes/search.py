from __future__ import annotations

from fastapi import APIRouter

from mediaindex.api.deps import ServicesDep, TenantId
from mediaindex.api.schemas import ErrorBody, SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["search"])


@router.post(
    "/search", response_model=SearchResponse, responses={400: {"model": ErrorBody}, 404: {"model": ErrorBody}}
)
def search(body: SearchRequest, services: ServicesDep, tenant_id: TenantId) -> SearchResponse:
    return services.search.search(tenant_id, body)
