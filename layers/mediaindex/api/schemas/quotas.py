"""The wire format of /v1/quotas: the quotas an admin sets, and each quota with its use."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mediaindex.api.schemas.base import Strict

STORED = (
    "Bytes of originals and derivatives the tenant may store; at it, new assets get 403 `quota_exceeded`."
)
HOURS = (
    "Hours of media the tenant may process per UTC day (by each task's asset duration); at it, new "
    "assets and re-runs get 403 `quota_exceeded`."
)
CONCURRENT = "Tasks that may be queued or processing at once; at it, new work gets 429 `concurrency_limited`."
RPM = "Requests per minute for the whole tenant (all its keys); over it, 429 `rate_limited`."
UNSET = " Null: the operator's default."


class QuotasIn(Strict):
    max_stored_bytes: int | None = Field(None, ge=0, description=STORED + UNSET, examples=[10_000_000_000])
    max_media_hours_per_day: float | None = Field(
        None, ge=0, strict=False, description=HOURS + UNSET, examples=[24]
    )
    max_concurrent_tasks: int | None = Field(None, ge=0, description=CONCURRENT + UNSET, examples=[4])
    requests_per_minute: int | None = Field(None, ge=0, description=RPM + UNSET, examples=[600])


class QuotaUseOut(BaseModel):
    name: str = Field(description="The quota: a field of `quotas`.", examples=["max_stored_bytes"])
    limit: float | None = Field(description="Its value now; null: no limit.")
    used: float = Field(description="How much of it is used now.")
    resets_at: datetime | None = Field(description="When the use goes back to 0 (UTC); null: it does not.")


class QuotasOut(BaseModel):
    quotas: QuotasIn = Field(
        description="The quotas in force: the tenant's own, else the operator's defaults."
    )
    usage: list[QuotaUseOut] = Field(description="Each quota with its use now.")
