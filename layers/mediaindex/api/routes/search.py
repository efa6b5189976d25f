from __future__ import annotations

from fastapi import APIRouter

from mediaindex.api.deps import ServicesDep, TenantId
from mediaindex.api.schemas.base import ErrorBody
from mediaindex.api.strict_json import StrictJsonRoute

# The search request and response are the search service's own values, served as they are.
from mediaindex.domain.search import SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["search"], route_class=StrictJsonRoute)


@router.post(
    "/search",
    response_model=SearchResponse,
    responses={400: {"model": ErrorBody}, 404: {"model": ErrorBody}},
    summary="Search an index",
    description="By words (`query_text`), by an asset's segment (`query_asset_id`) or by an image "
    "(`query_image_url`), over what was said and what was seen; answers the matching segments (or assets, "
    "`group_by=asset`), best first. GET /v1/capabilities says which `search_options` work here.",
)
def search(body: SearchRequest, services: ServicesDep, tenant_id: TenantId) -> SearchResponse:
    return services.search.search(tenant_id, body)
