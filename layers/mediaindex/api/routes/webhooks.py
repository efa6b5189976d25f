"""/v1/webhooks: subscriptions, their delivery log, redelivery and re-enabling (docs/webhooks.md).
A runtime without webhooks (aws without a queue and a KMS key) answers 503 `webhooks_unavailable`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from mediaindex.api.deps import IdPath, Limit, ServicesDep, TenantId
from mediaindex.api.schemas.base import ErrorBody
from mediaindex.api.schemas.webhooks import (
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from mediaindex.api.strict_json import StrictJsonRoute
from mediaindex.domain.errors import UnavailableError
from mediaindex.services.webhooks import WebhookService

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=StrictJsonRoute)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}


def get_webhooks(services: ServicesDep) -> WebhookService:
    if services.webhooks is None:
        raise UnavailableError("webhooks are not configured on this deployment", code="webhooks_unavailable")
    return services.webhooks


WebhooksDep = Annotated[WebhookService, Depends(get_webhooks)]


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses={400: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Create a webhook",
    description="Subscribes `url` to `events`. The answer carries the signing `secret` once; it is never "
    "shown again. A private, loopback, link-local or metadata target is 400 `webhook_url_forbidden`.",
)
def create_webhook(body: WebhookCreate, webhooks: WebhooksDep, tenant_id: TenantId) -> WebhookCreated:
    webhook, secret = webhooks.create(tenant_id, body.url, body.events, body.description)
    return WebhookCreated(**WebhookOut.of(webhook).model_dump(), secret=secret)


@router.get(
    "",
    response_model=WebhookList,
    summary="List webhooks",
    description="The tenant's webhooks with their events and state, without their secrets.",
)
def list_webhooks(webhooks: WebhooksDep, tenant_id: TenantId) -> WebhookList:
    return WebhookList(data=[WebhookOut.of(w) for w in webhooks.list_webhooks(tenant_id)])


@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    responses=NOT_FOUND,
    summary="Get a webhook",
    description="One webhook, without its secret; `enabled` and `disabled_reason` say whether it is sent to.",
)
def get_webhook(webhook_id: IdPath, webhooks: WebhooksDep, tenant_id: TenantId) -> WebhookOut:
    return WebhookOut.of(webhooks.get(tenant_id, webhook_id))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    responses=NOT_FOUND,
    summary="Delete a webhook",
    description="With its delivery log; pending deliveries are not sent.",
)
def delete_webhook(webhook_id: IdPath, webhooks: WebhooksDep, tenant_id: TenantId) -> Response:
    webhooks.delete(tenant_id, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/enable",
    response_model=WebhookOut,
    responses=NOT_FOUND,
    summary="Re-enable a webhook",
    description="After it was disabled for sustained failure; its failure record starts afresh.",
)
def enable_webhook(webhook_id: IdPath, webhooks: WebhooksDep, tenant_id: TenantId) -> WebhookOut:
    return WebhookOut.of(webhooks.enable(tenant_id, webhook_id))


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    responses=NOT_FOUND,
    summary="List a webhook's deliveries",
    description="Newest first: event, state, attempts, last status code and error, next attempt.",
)
def list_deliveries(
    webhook_id: IdPath, webhooks: WebhooksDep, tenant_id: TenantId, limit: Limit = 50
) -> DeliveryList:
    items = webhooks.deliveries(tenant_id, webhook_id, limit=limit)
    return DeliveryList(data=[DeliveryOut.of(d) for d in items])


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    responses={**NOT_FOUND, 409: {"model": ErrorBody}},
    summary="Send a delivery again",
    description="Same id and body, a fresh retry schedule, sent now. A disabled webhook is 409 "
    "`webhook_disabled`.",
)
def redeliver(
    webhook_id: IdPath, delivery_id: IdPath, webhooks: WebhooksDep, tenant_id: TenantId
) -> DeliveryOut:
    return DeliveryOut.of(webhooks.redeliver(tenant_id, webhook_id, delivery_id))
