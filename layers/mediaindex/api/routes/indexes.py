from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from mediaindex.api.deps import Cursor, IdempotentPostDep, IdPath, Limit, ServicesDep, TenantId
from mediaindex.api.schemas.base import ErrorBody
from mediaindex.api.schemas.indexes import IndexCreate, IndexList, IndexOut, IndexPatch, ReindexCreate
from mediaindex.api.strict_json import StrictJsonRoute
from mediaindex.domain.models import Index, IndexModels
from mediaindex.domain.rules import parse_features
from mediaindex.services.bundle import Services

router = APIRouter(prefix="/v1/indexes", tags=["indexes"], route_class=StrictJsonRoute)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}


@router.post(
    "",
    status_code=201,
    response_model=IndexOut,
    responses={409: {"model": ErrorBody}},
    summary="Create an index",
    description="An index is a searchable collection of assets; its `default_features` run on every "
    "asset added to it. A name already used in the tenant is 409 `index_name_already_exists`.",
)
def create_index(body: IndexCreate, post: IdempotentPostDep, services: ServicesDep) -> JSONResponse:
    features = (
        parse_features(body.default_features, field="default_features")
        if body.default_features is not None
        else None
    )

    def execute() -> IndexOut:
        return _out(
            services,
            services.indexes.create(
                post.tenant_id,
                name=body.name,
                description=body.description,
                default_features=features,
                is_sample=body.is_sample,
            ),
        )

    return post.respond(201, execute)


@router.get(
    "",
    response_model=IndexList,
    summary="List indexes",
    description="The tenant's indexes, a page at a time (`limit`, `cursor`).",
)
def list_indexes(
    services: ServicesDep, tenant_id: TenantId, limit: Limit = 20, cursor: Cursor = None
) -> IndexList:
    page = services.indexes.list_indexes(tenant_id, limit=limit, cursor=cursor)
    return IndexList(data=[_out(services, i) for i in page.data], next_cursor=page.next_cursor)


@router.get(
    "/{index_id}",
    response_model=IndexOut,
    responses=NOT_FOUND,
    summary="Get an index",
    description="One index, with how many assets it holds, the generation search answers from and "
    "its models, and the progress of its latest re-index.",
)
def get_index(index_id: IdPath, services: ServicesDep, tenant_id: TenantId) -> IndexOut:
    # A read moves a running re-index on when no settled task has lately (it resumes a crashed one).
    return _out(services, services.reindex.get(tenant_id, index_id))


@router.patch(
    "/{index_id}",
    response_model=IndexOut,
    responses={**NOT_FOUND, 409: {"model": ErrorBody}},
    summary="Change an index",
    description="Changes only the fields sent: name, description, default features.",
)
def patch_index(index_id: IdPath, body: IndexPatch, services: ServicesDep, tenant_id: TenantId) -> IndexOut:
    features = (
        parse_features(body.default_features, field="default_features")
        if body.default_features is not None
        else None
    )
    return _out(
        services,
        services.indexes.update(
            tenant_id,
            index_id,
            name=body.name,
            description=body.description,
            default_features=features,
            fields_set=set(body.model_fields_set),
        ),
    )


@router.delete(
    "/{index_id}",
    status_code=202,
    response_class=Response,
    responses={**NOT_FOUND, 202: {"description": "Accepted: the index reads as gone at once"}},
    summary="Delete an index and its assets",
    description="The index and its assets read as gone at once; their files, segments and vectors are "
    "removed in the background by a purge that resumes after a restart.",
)
def delete_index(index_id: IdPath, services: ServicesDep, tenant_id: TenantId) -> Response:
    services.indexes.delete(tenant_id, index_id)
    return Response(status_code=202)


@router.post(
    "/{index_id}/reindex",
    status_code=202,
    response_model=IndexOut,
    responses={**NOT_FOUND, 400: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Re-index with other models",
    description="Builds a new generation of the index (new transcripts when the Whisper model changes, "
    "new vectors) while search keeps answering from the current one, then swaps atomically and drops "
    "the old one; `index.reindexed` is sent when it ends. Progress is in the index's `reindex`. At "
    "most one runs per index (409 `reindex_running`); a model not offered here is 400 "
    "`model_not_available`.",
)
def start_reindex(
    index_id: IdPath, services: ServicesDep, tenant_id: TenantId, body: ReindexCreate | None = None
) -> IndexOut:
    # No body at all is the empty one: rebuild with the deployment's current models.
    models = IndexModels(transcription=body.models.transcription if body else None)
    return _out(services, services.reindex.start(tenant_id, index_id, models))


@router.post(
    "/{index_id}/reindex/cancel",
    response_model=IndexOut,
    responses={**NOT_FOUND, 409: {"model": ErrorBody}},
    summary="Cancel a re-index",
    description="Stops the running re-index and drops what it built; search never stopped answering "
    "from the current generation. 409 `reindex_not_running` when none runs, `reindex_swapped` once "
    "it has swapped (it is finishing).",
)
def cancel_reindex(index_id: IdPath, services: ServicesDep, tenant_id: TenantId) -> IndexOut:
    return _out(services, services.reindex.cancel(tenant_id, index_id))


def _out(services: Services, index: Index) -> IndexOut:
    return IndexOut.of(index, default_transcription=services.settings.whisper_model)
