"""The wire format of /v1/health and /v1/usage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    runtime: str


class Usage(BaseModel):
    asset_count: int
    assets_by_media_type: dict[str, int]
    bytes_by_media_type: dict[str, int]
    original_bytes: int
    derivative_bytes: int
    feature_runs: dict[str, int]
