from __future__ import annotations

from fastapi import APIRouter

from mediaindex.api.deps import ServicesDep, TenantId
from mediaindex.api.schemas import ErrorBody
from mediaindex.errors import UnavailableError
from mediaindex.services.search import SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["search"])


@router.post(
    "/search", response_model=SearchResponse, responses={400: {"model": ErrorBody}, 404: {"model": ErrorBody}}
)
def search(body: SearchRequest, services: ServicesDep, tenant_id: TenantId) -> SearchResponse:
    if services.search is None:
        raise UnavailableError("search is not configured on this deployment", code="search_unavailable")
    response: SearchResponse = services.search.search(tenant_id, body)
    return response
