"""/v1/quotas: the caller's tenant's quotas and their use; an `admin` key changes them."""

from __future__ import annotations

from fastapi import APIRouter

from mediaindex.api.deps import ServicesDep, TenantId
from mediaindex.api.schemas.quotas import QuotasIn, QuotasOut, QuotaUseOut
from mediaindex.api.strict_json import StrictJsonRoute
from mediaindex.domain.quotas import Quotas
from mediaindex.services.bundle import Services

router = APIRouter(prefix="/v1/quotas", tags=["quotas"], route_class=StrictJsonRoute)


def _out(services: Services, tenant_id: str) -> QuotasOut:
    quotas, uses = services.quotas.uses(tenant_id)
    return QuotasOut(
        quotas=QuotasIn(**quotas.model_dump()), usage=[QuotaUseOut(**u.model_dump()) for u in uses]
    )


@router.get(
    "",
    response_model=QuotasOut,
    summary="Get this tenant's quotas and their use",
    description="Each quota in force (the tenant's own, else the operator's default; null: no limit) "
    "with its use now. Reading it costs a pass over the tenant's assets and today's tasks.",
)
def get_quotas(services: ServicesDep, tenant_id: TenantId) -> QuotasOut:
    return _out(services, tenant_id)


@router.put(
    "",
    response_model=QuotasOut,
    summary="Set this tenant's quotas",
    description="Replaces the tenant's own quotas (a null or absent one falls back to the operator's "
    "default). Needs an `admin` key. Answers the quotas in force with their use.",
)
def put_quotas(body: QuotasIn, services: ServicesDep, tenant_id: TenantId) -> QuotasOut:
    services.quotas.set(tenant_id, Quotas(**body.model_dump()))
    return _out(services, tenant_id)
