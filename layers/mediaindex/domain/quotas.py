"""Per-tenant quotas: their values, which requests start work (and so are checked against the
storage, daily-hours and concurrency quotas), and the errors a refusal answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mediaindex.domain.errors import ForbiddenError, RateLimitedError

WINDOW_S = 60  # requests are counted per tenant in fixed one-minute windows
# Requests that start pipeline work: an asset (its ingest) and a re-run.
WORK_ROUTES = frozenset({("POST", "/v1/assets"), ("POST", "/v1/tasks")})


class Quotas(BaseModel):
    """A tenant's limits; None: no limit."""

    model_config = ConfigDict(extra="ignore")

    max_stored_bytes: int | None = Field(None, ge=0)
    max_media_hours_per_day: float | None = Field(None, ge=0)
    max_concurrent_tasks: int | None = Field(None, ge=0)
    requests_per_minute: int | None = Field(None, ge=0)

    def over(self, defaults: Quotas) -> Quotas:
        """These quotas, each unset one taken from `defaults` (the operator's)."""
        mine = self.model_dump(exclude_none=True)
        return defaults.model_copy(update=mine)


class QuotaExceededError(ForbiddenError):
    """403 `quota_exceeded`: storage or daily media hours used up; `field` names the quota."""

    code = "quota_exceeded"


class ConcurrencyLimitedError(RateLimitedError):
    """429 `concurrency_limited`: max_concurrent_tasks are queued or processing."""

    code = "concurrency_limited"


def window_start(epoch_s: float) -> int:
    return int(epoch_s // WINDOW_S) * WINDOW_S
