from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from mediaindex.api.deps import Cursor, IdempotentPostDep, IdPath, Limit, ServicesDep, TenantId
from mediaindex.api.schemas.base import ErrorBody
from mediaindex.api.schemas.tasks import TaskCreate, TaskList, TaskOut
from mediaindex.api.strict_json import StrictJsonRoute
from mediaindex.domain.rules import parse_features

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=StrictJsonRoute)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}


@router.post(
    "",
    status_code=201,
    response_model=TaskOut,
    responses={**NOT_FOUND, 400: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Run features again on an asset",
    description="Re-runs `transcription` or `embedding` (say, after a model change); `proxy` and `preview` "
    "are 400 `feature_not_rerunnable`. A feature already queued or processing is 409 `feature_busy`.",
)
def create_task(body: TaskCreate, post: IdempotentPostDep, services: ServicesDep) -> JSONResponse:
    features = parse_features(body.feature_types, field="feature_types")
    return post.respond(
        201, lambda: TaskOut.of(services.tasks.rerun(post.tenant_id, body.asset_id, features))
    )


@router.get(
    "/active",
    response_model=TaskList,
    summary="List active tasks",
    description="Tasks still queued or processing, a page at a time.",
)
def active_tasks(
    services: ServicesDep, tenant_id: TenantId, limit: Limit = 20, cursor: Cursor = None
) -> TaskList:
    page = services.tasks.list_tasks(tenant_id, asset_id=None, active_only=True, limit=limit, cursor=cursor)
    return TaskList(data=[TaskOut.of(t) for t in page.data], next_cursor=page.next_cursor)


@router.get(
    "",
    response_model=TaskList,
    summary="List tasks",
    description="Every task of the tenant, or of one asset (`asset_id`), a page at a time.",
)
def list_tasks(
    services: ServicesDep,
    tenant_id: TenantId,
    asset_id: str | None = Query(None, max_length=64, description="Only this asset's tasks."),
    limit: Limit = 20,
    cursor: Cursor = None,
) -> TaskList:
    page = services.tasks.list_tasks(
        tenant_id, asset_id=asset_id, active_only=False, limit=limit, cursor=cursor
    )
    return TaskList(data=[TaskOut.of(t) for t in page.data], next_cursor=page.next_cursor)


@router.get(
    "/{task_id}",
    response_model=TaskOut,
    responses=NOT_FOUND,
    summary="Get a task",
    description="One task, with the state of each feature it runs.",
)
def get_task(task_id: IdPath, services: ServicesDep, tenant_id: TenantId) -> TaskOut:
    return TaskOut.of(services.tasks.get(tenant_id, task_id))


@router.post(
    "/{task_id}/cancel",
    response_model=TaskOut,
    responses={**NOT_FOUND, 409: {"model": ErrorBody}},
    summary="Cancel a task",
    description="Its queued and running features end `cancelled`; a task that has ended is 409 "
    "`task_not_active`.",
)
def cancel_task(task_id: IdPath, post: IdempotentPostDep, services: ServicesDep) -> JSONResponse:
    return post.respond(200, lambda: TaskOut.of(services.tasks.cancel(post.tenant_id, task_id)))
