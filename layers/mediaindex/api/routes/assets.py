from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError as PydanticValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediaindex.api import strict_json
from mediaindex.api.deps import (
    Cursor,
    IdempotencyKey,
    IdempotentPostDep,
    IdPath,
    Limit,
    ServicesDep,
    TenantId,
    respond,
)
from mediaindex.api.errors import BodyRefused, from_pydantic
from mediaindex.api.schemas.assets import (
    AssetCreate,
    AssetCreated,
    AssetList,
    AssetOut,
    AssetPatch,
    BatchDeleteOut,
    BatchGetOut,
    IdList,
)
from mediaindex.api.schemas.base import ErrorBody
from mediaindex.api.schemas.outputs import (
    DerivativeList,
    DerivativeOut,
    SegmentList,
    SegmentOut,
    SignedUrlOut,
)
from mediaindex.api.schemas.tasks import TaskOut
from mediaindex.api.schemas.uploads import CompleteUpload, MultipartOut, PartNumbers, UploadOut
from mediaindex.api.strict_json import StrictJsonRoute
from mediaindex.domain.errors import PayloadTooLargeError, ValidationError
from mediaindex.domain.models import AssetStatus, MediaType
from mediaindex.domain.rules import parse_features
from mediaindex.domain.transcript_formats import render as render_transcript
from mediaindex.domain.transcripts import Transcript
from mediaindex.services.bundle import Services
from mediaindex.services.idempotency import Rebuild

router = APIRouter(prefix="/v1/assets", tags=["assets"], route_class=StrictJsonRoute)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody}}

_FORM_FIELDS: dict[str, dict[str, Any]] = {
    "index_id": {"type": "string", "description": "The index to add the asset to."},
    "name": {"type": "string", "description": "A file name with an extension; default: the file's name."},
    "save_original": {"type": "boolean", "description": "Keep the original file."},
    "features": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Features besides the index's defaults, one form field each.",
        "example": ["embedding", "transcription"],
    },
    "user_metadata": {"type": "string", "description": "A JSON object, as text."},
    "asset_file": {"type": "string", "format": "binary", "description": "The file (up to the form limit)."},
    "asset_url": {"type": "string", "description": "A public http(s) URL to fetch, instead of asset_file."},
}
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": AssetCreate.model_json_schema()},
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["index_id", "name"], "properties": _FORM_FIELDS}
            },
        },
    }
}
_CHUNK = 1024 * 1024


def _create(services: Services, tenant_id: str, body: AssetCreate, file: Path | None) -> AssetCreated:
    fields: dict[str, Any] = {
        "index_id": body.index_id,
        "name": body.name,
        "features": parse_features(body.features or []),
        "save_original": body.save_original,
        "user_metadata": body.user_metadata,
        "content_type": body.content_type,
    }
    if file is not None:
        asset, task = services.assets.create_from_file(tenant_id, path=file, **fields)
        return AssetCreated(asset=AssetOut.of(asset), task=TaskOut.of(task))
    fields["size_bytes"] = body.size_bytes
    if body.asset_url is not None:
        asset, task = services.assets.create_from_url(tenant_id, asset_url=body.asset_url, **fields)
        return AssetCreated(asset=AssetOut.of(asset), task=TaskOut.of(task))
    asset, plan = services.assets.create_for_upload(tenant_id, **fields)
    return AssetCreated(asset=AssetOut.of(asset), upload=UploadOut.of(plan))


def _multipart_ids(body: Any) -> dict[str, Any] | None:
    """A multipart create is remembered by its asset and the parts it signed, not their URLs; other
    creates (one signed PUT, or an ingest task) are small and kept whole."""
    multipart = (body.get("upload") or {}).get("multipart")
    if not multipart:
        return None
    return {"asset_id": body["asset"]["id"], "part_numbers": [p["part_number"] for p in multipart["parts"]]}


def _rebuild_created(services: Services, tenant_id: str) -> Rebuild:
    def body(ids: dict[str, Any]) -> Any:
        # 404 once the asset is deleted, 409 once its upload completed or ended: no URL to give.
        plan = services.uploads.sign_parts(tenant_id, ids["asset_id"], list(ids["part_numbers"]))
        asset = services.assets.get(tenant_id, ids["asset_id"])
        return jsonable_encoder(AssetCreated(asset=AssetOut.of(asset), upload=UploadOut.of(plan)))

    return Rebuild(ids=_multipart_ids, body=body)


def _respond_created(
    services: Services, request: Request, tenant_id: str, idem: str | None, raw: bytes, make: Any
) -> JSONResponse:
    """`respond` for a create, whose keyed record keeps a multipart upload's ids, not its URLs."""
    return respond(
        services, request, tenant_id, idem, raw, 201, make, rebuild=_rebuild_created(services, tenant_id)
    )


async def _spool(upload: UploadFile, limit: int, dest: Path) -> str:
    """Copies the form file to disk in chunks, refusing it past `limit`; returns its sha256."""
    h, size = hashlib.sha256(), 0
    with dest.open("wb") as out:
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(
                    f"asset_file is over the {limit} byte limit of form uploads; use a signed upload URL",
                    code="asset_file_too_large",
                    field="asset_file",
                )
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def _form_to_body(form: Any) -> tuple[AssetCreate, UploadFile | None]:
    file = form.get("asset_file")
    url = form.get("asset_url")
    has_file = isinstance(file, UploadFile)
    if has_file and url:
        raise ValidationError("send exactly one of asset_file or asset_url", code="asset_source_conflict")
    if not has_file and not url:
        raise ValidationError("send one of asset_file or asset_url", code="asset_source_required")
    meta = form.get("user_metadata")
    try:
        user_metadata = strict_json.loads(str(meta)) if meta else None
    except json.JSONDecodeError as e:
        raise ValidationError(
            f"user_metadata must be a JSON object: {e.msg}", field="user_metadata"
        ) from None
    save = str(form.get("save_original", "true")).lower()
    if save not in ("true", "false", "1", "0"):
        raise ValidationError("save_original must be true or false", field="save_original")
    try:
        body = AssetCreate(
            index_id=str(form.get("index_id") or ""),
            name=str(form.get("name") or (file.filename if has_file else "") or ""),
            features=[str(f) for f in form.getlist("features")],
            save_original=save in ("true", "1"),
            user_metadata=user_metadata,
            asset_url=str(url) if url else None,
            content_type=(
                file.content_type if has_file and file.content_type != "application/octet-stream" else None
            ),
        )
    except PydanticValidationError as e:
        raise from_pydantic(e.errors()) from None
    if not body.index_id:
        raise ValidationError("index_id is required", code="parameter_missing", field="index_id")
    return body, (file if has_file else None)


@router.post(
    "",
    status_code=201,
    response_model=AssetCreated,
    openapi_extra=_CREATE_BODY,
    responses={**NOT_FOUND, 400: {"model": ErrorBody}, 413: {"model": ErrorBody}},
    summary="Create an asset",
    description="JSON: answers the asset and a signed `upload` (PUT the bytes there, or multipart parts "
    "over 64 MiB); the bytes never pass through the API. JSON with `asset_url`, or multipart/form-data "
    "with `asset_file` (a small file) or `asset_url`, as in Aspect: answers the asset and its ingest "
    "`task`. An unknown index is 404 `index_not_found`.",
)
async def create_asset(
    request: Request, services: ServicesDep, tenant_id: TenantId, idem: IdempotencyKey = None
) -> JSONResponse:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limit = services.settings.max_form_upload_bytes
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        declared = int(request.headers.get("content-length") or 0)
        if declared > limit + 64 * 1024:
            raise PayloadTooLargeError(
                f"the form is over the {limit} byte limit; use a signed upload URL",
                code="asset_file_too_large",
            )
        try:
            form = await request.form(max_files=1, max_fields=50)
        except StarletteHTTPException as e:
            if isinstance(e, BodyRefused) or e.status_code != 400:
                raise
            raise ValidationError(f"the form is malformed: {e.detail}", field="body") from None
        with tempfile.TemporaryDirectory(prefix="mi-form-") as tmp:
            body, upload = _form_to_body(form)
            path = Path(tmp) / "upload"
            digest = await _spool(upload, limit, path) if upload else ""
            raw = body.model_dump_json().encode() + digest.encode()
            return await run_in_threadpool(
                _respond_created,
                services,
                request,
                tenant_id,
                idem,
                raw,
                lambda: _create(services, tenant_id, body, path if upload else None),
            )
    if ctype not in ("application/json", ""):
        raise ValidationError(
            "send application/json or multipart/form-data",
            code="content_type_unsupported",
            field="Content-Type",
        )
    raw = await request.body()
    try:
        body = AssetCreate.model_validate(strict_json.loads(raw or b"null"))
    except json.JSONDecodeError as e:
        raise ValidationError(f"the request body is not valid JSON: {e.msg}", code="invalid_json") from None
    except PydanticValidationError as e:
        raise from_pydantic(e.errors()) from None
    return await run_in_threadpool(
        _respond_created,
        services,
        request,
        tenant_id,
        idem,
        raw,
        lambda: _create(services, tenant_id, body, None),
    )


@router.get(
    "",
    response_model=AssetList,
    responses=NOT_FOUND,
    summary="List assets",
    description="The tenant's assets, of one index, status or media type if asked, a page at a time; an "
    "unknown `index_id` is 404 `index_not_found`.",
)
def list_assets(
    services: ServicesDep,
    tenant_id: TenantId,
    index_id: str | None = Query(None, max_length=64, description="Only this index's assets."),
    status: AssetStatus | None = Query(None, description="Only assets in this status."),
    media_type: MediaType | None = Query(None, description="Only assets of this media type."),
    limit: Limit = 20,
    cursor: Cursor = None,
) -> AssetList:
    page = services.assets.list_assets(
        tenant_id, index_id=index_id, status=status, media_type=media_type, limit=limit, cursor=cursor
    )
    return AssetList(data=[AssetOut.of(a) for a in page.data], next_cursor=page.next_cursor)


@router.post(
    "/batch-get",
    response_model=BatchGetOut,
    summary="Get many assets",
    description="Up to 100 assets by id in one call; ids that name none are listed in `not_found_ids`.",
)
def batch_get(body: IdList, services: ServicesDep, tenant_id: TenantId) -> BatchGetOut:
    found, missing = services.assets.batch_get(tenant_id, body.ids)
    return BatchGetOut(data=[AssetOut.of(a) for a in found], not_found_ids=missing)


@router.post(
    "/batch-delete",
    response_model=BatchDeleteOut,
    summary="Delete many assets",
    description="Up to 100 assets by id, as DELETE /v1/assets/{id} does each.",
)
def batch_delete(body: IdList, post: IdempotentPostDep, services: ServicesDep) -> JSONResponse:
    def execute() -> BatchDeleteOut:
        deleted, missing = services.assets.batch_delete(post.tenant_id, body.ids)
        return BatchDeleteOut(requested_count=len(body.ids), deleted_count=deleted, not_found_ids=missing)

    return post.respond(200, execute)


@router.get(
    "/{asset_id}",
    response_model=AssetOut,
    responses=NOT_FOUND,
    summary="Get an asset",
    description="The asset, its status and the state of each feature (poll this until `ready`).",
)
def get_asset(asset_id: IdPath, services: ServicesDep, tenant_id: TenantId) -> AssetOut:
    return AssetOut.of(services.assets.get(tenant_id, asset_id))


@router.patch(
    "/{asset_id}",
    response_model=AssetOut,
    responses=NOT_FOUND,
    summary="Change an asset",
    description="Renames it or replaces its `user_metadata`; only the fields sent change.",
)
def patch_asset(asset_id: IdPath, body: AssetPatch, services: ServicesDep, tenant_id: TenantId) -> AssetOut:
    changes = body.model_dump(include=body.model_fields_set)
    if "name" in changes and changes["name"] is None:
        raise ValidationError("name cannot be null", field="name")
    return AssetOut.of(services.assets.patch(tenant_id, asset_id, changes))


@router.delete(
    "/{asset_id}",
    status_code=204,
    response_class=Response,
    responses=NOT_FOUND,
    summary="Delete an asset",
    description="Removes its original, derivatives, segments and vectors, and cancels its running work.",
)
def delete_asset(asset_id: IdPath, services: ServicesDep, tenant_id: TenantId) -> Response:
    services.assets.delete(tenant_id, asset_id)
    return Response(status_code=204)


@router.post(
    "/{asset_id}/upload/parts",
    response_model=MultipartOut,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Sign more multipart upload parts",
    description="Fresh signed URLs for up to 100 parts of a multipart upload (new ones, or expired ones).",
)
def sign_parts(
    asset_id: IdPath, body: PartNumbers, services: ServicesDep, tenant_id: TenantId
) -> MultipartOut:
    return MultipartOut.of(services.uploads.sign_parts(tenant_id, asset_id, body.part_numbers))


@router.post(
    "/{asset_id}/upload/complete",
    response_model=AssetOut,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Complete a multipart upload",
    description="Joins the parts (each with the ETag its PUT answered) into the file; processing starts.",
)
def complete_upload(
    asset_id: IdPath, body: CompleteUpload, post: IdempotentPostDep, services: ServicesDep
) -> JSONResponse:
    parts = [(p.part_number, p.etag) for p in body.parts]
    return post.respond(
        200, lambda: AssetOut.of(services.uploads.complete_upload(post.tenant_id, asset_id, parts))
    )


@router.delete(
    "/{asset_id}/upload",
    status_code=204,
    response_class=Response,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Abort a multipart upload",
    description="The asset ends `failed` with `upload_aborted`, and its parts are removed.",
)
def abort_upload(asset_id: IdPath, services: ServicesDep, tenant_id: TenantId) -> Response:
    services.uploads.abort_upload(tenant_id, asset_id)
    return Response(status_code=204)


@router.get(
    "/{asset_id}/download",
    response_model=SignedUrlOut,
    responses={
        **NOT_FOUND,
        **CONFLICT,
        307: {"description": "With `redirect=true`: `Location` is the signed URL", "content": {}},
    },
    summary="Download the original file",
    description="A signed URL of the original, or with `redirect=true` a 307 to it (`curl -L` then saves "
    "the file). 409 `original_not_saved` when it was not kept, `original_not_available` before its upload.",
)
def download(
    asset_id: IdPath,
    services: ServicesDep,
    tenant_id: TenantId,
    redirect: bool = Query(False, description="Answer 307 to the signed URL instead of JSON."),
) -> Response:
    signed = services.outputs.download(tenant_id, asset_id)
    if redirect:
        return RedirectResponse(signed.url, status_code=307)
    return JSONResponse(jsonable_encoder(SignedUrlOut(url=signed.url, expires_at=signed.expires_at)))


@router.get(
    "/{asset_id}/derivatives",
    response_model=DerivativeList,
    responses=NOT_FOUND,
    summary="List an asset's derivatives",
    description="Its proxy, poster, thumbnail and storyboard, each with a signed URL.",
)
def derivatives(asset_id: IdPath, services: ServicesDep, tenant_id: TenantId) -> DerivativeList:
    return DerivativeList(
        data=[DerivativeOut.of(v) for v in services.outputs.derivatives(tenant_id, asset_id)]
    )


@router.get(
    "/{asset_id}/transcript",
    responses={
        200: {
            "model": Transcript,
            "description": "The transcript, in the format asked",
            "content": {
                "text/vtt": {"schema": {"type": "string"}},
                "application/x-subrip": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        },
        **NOT_FOUND,
    },
    summary="Get an asset's transcript",
    description="What was said, with segment and word times: JSON, WebVTT, SubRip or plain text "
    "(`format`). 404 `transcript_not_found` when there is none.",
)
def transcript(
    asset_id: IdPath,
    services: ServicesDep,
    tenant_id: TenantId,
    format: Literal["json", "vtt", "srt", "txt"] = Query("json", description="The transcript's format."),
) -> Response:
    body, content_type = render_transcript(services.outputs.transcript(tenant_id, asset_id), format)
    return Response(body, media_type=content_type)


@router.get(
    "/{asset_id}/segments",
    response_model=SegmentList,
    responses=NOT_FOUND,
    summary="List an asset's segments",
    description="The time segments search answers with, in time order, a page at a time.",
)
def segments(
    asset_id: IdPath, services: ServicesDep, tenant_id: TenantId, limit: Limit = 20, cursor: Cursor = None
) -> SegmentList:
    page, urls = services.outputs.segments(tenant_id, asset_id, limit=limit, cursor=cursor)
    return SegmentList(
        data=[
            SegmentOut(
                id=s.id, start=s.start, end=s.end, kind=s.kind, text=s.text, keyframe_url=urls.get(s.id)
            )
            for s in page.data
        ],
        next_cursor=page.next_cursor,
    )
