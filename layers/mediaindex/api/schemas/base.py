"""What every /v1 body and response shares: a request body refuses unknown fields and takes JSON
types as they are (`Strict`), a domain rule runs inside validation with its own error code
(`domain_check`), a response leaves out its unset alternatives (`OneOf`), and the error body every
failure answers with (`ErrorBody`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer
from pydantic_core import PydanticCustomError

from mediaindex.domain.errors import ValidationError as DomainValidationError

NEXT_CURSOR = "Pass as `cursor` to get the next page; null on the last page."


class Strict(BaseModel):
    """A request body: unknown fields refused, and JSON types taken as they are (strict mode: no
    `"10"` for 10, no `1` for true; docs/api.md)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def domain_check(check: Callable[[str], str], value: str | None) -> str | None:
    """Runs a domain rule inside validation; its code becomes the error's (api/errors.CUSTOM_CODES)."""
    if value is None:
        return None
    try:
        return check(value)
    except DomainValidationError as e:
        raise PydanticCustomError(e.code, "{reason}", {"reason": e.message}) from None


class OneOf(BaseModel):
    """A response whose optional alternatives are left out rather than sent as null
    (an upload is either a PUT or a multipart; a created asset has an upload or a task)."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class ErrorDetail(BaseModel):
    code: str = Field(
        description="What went wrong, as a stable snake_case code.", examples=["asset_not_found"]
    )
    message: str = Field(
        description="What went wrong, for a person.", examples=["asset ast_01j... not found"]
    )
    request_id: str = Field(
        description="The request's id (also the `x-request-id` header), to find it in the logs.",
        examples=["req_3f2a9c0d1e"],
    )
    field: str | None = Field(
        None,
        description="The body field, parameter or header at fault, where there is one.",
        examples=["name"],
    )


class ErrorBody(BaseModel):
    """What every failure answers."""

    error: ErrorDetail = Field(description="The error.")
