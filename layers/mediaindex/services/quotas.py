"""Per-tenant quotas: what an admin set (PUT /v1/quotas) over the operator's defaults, each
quota's use, and the checks a request passes before it runs (api/deps.py):

- every request counts against `requests_per_minute` (a fixed one-minute window per tenant,
  shared by every process: 429 `rate_limited`, Retry-After the end of the window);
- a request that starts work (domain.quotas.WORK_ROUTES) is refused while the tenant's stored
  bytes or today's media hours (UTC day) are at their quota (403 `quota_exceeded`, `field`
  names the quota), or `max_concurrent_tasks` tasks are queued or processing (429
  `concurrency_limited`, Retry-After CONCURRENCY_RETRY_S).

Stored bytes come from the usage counters (services/usage.py): a few store calls, not a read of
the tenant's assets, so the check costs the same at any size."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from mediaindex.domain.errors import RateLimitedError
from mediaindex.domain.quotas import (
    WINDOW_S,
    WORK_ROUTES,
    ConcurrencyLimitedError,
    QuotaExceededError,
    Quotas,
    window_start,
)
from mediaindex.ports.keys import KeyRepository
from mediaindex.services.usage import UsageService

CONCURRENCY_RETRY_S = 30  # a guess at when a task slot frees: tasks take seconds to minutes


class QuotaUse(BaseModel):
    name: str
    limit: float | None
    used: float
    resets_at: datetime | None = None


class QuotaService:
    def __init__(
        self,
        keys: KeyRepository,
        usage: UsageService,
        defaults: Quotas,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._usage = usage
        self._defaults = defaults
        self._clock = clock

    def effective(self, tenant_id: str) -> Quotas:
        stored = self._keys.get_quotas(tenant_id)
        return stored.over(self._defaults) if stored else self._defaults

    def set(self, tenant_id: str, quotas: Quotas) -> Quotas:
        """Replaces what the tenant's admin set (an unset quota falls back to the default)."""
        self._keys.put_quotas(tenant_id, quotas)
        return quotas.over(self._defaults)

    def admit(self, tenant_id: str, method: str, path: str) -> None:
        quotas = self.effective(tenant_id)
        self._admit_request(tenant_id, quotas)
        if (method, path) in WORK_ROUTES:
            self._admit_work(tenant_id, quotas)

    def _admit_request(self, tenant_id: str, quotas: Quotas) -> None:
        limit = quotas.requests_per_minute
        if limit is None:
            return
        now = self._clock()
        start = window_start(now)
        if not self._keys.count_request(tenant_id, start, limit):
            raise RateLimitedError(
                f"over this tenant's {limit} requests per minute",
                retry_after_s=max(1, int(start + WINDOW_S - now + 0.999)),
            )

    def _admit_work(self, tenant_id: str, quotas: Quotas) -> None:
        if quotas.max_concurrent_tasks is not None:
            active = self._usage.active_tasks(tenant_id, at_most=quotas.max_concurrent_tasks)
            if active >= quotas.max_concurrent_tasks:
                err = ConcurrencyLimitedError(
                    f"{active} tasks are queued or processing, this tenant's limit",
                    retry_after_s=CONCURRENCY_RETRY_S,
                )
                raise err
        if quotas.max_stored_bytes is not None:
            stored = self._usage.stored_bytes(tenant_id)
            if stored >= quotas.max_stored_bytes:
                raise QuotaExceededError(
                    f"{stored} bytes are stored, this tenant's quota of {quotas.max_stored_bytes}",
                    field="max_stored_bytes",
                )
        if quotas.max_media_hours_per_day is not None:
            hours = self._usage.media_seconds_on(tenant_id, self._day_start().date()) / 3600
            if hours >= quotas.max_media_hours_per_day:
                raise QuotaExceededError(
                    f"{hours:.2f} media hours were processed today (UTC), this tenant's quota of "
                    f"{quotas.max_media_hours_per_day:g}; it resets at {self._day_end().isoformat()}",
                    field="max_media_hours_per_day",
                )

    def uses(self, tenant_id: str, *, stored_bytes: int | None = None) -> tuple[Quotas, list[QuotaUse]]:
        """The effective quotas and each one's use now. `stored_bytes`: the tenant's stored bytes
        when the caller has just read them (GET /v1/usage), so its usage counters are read once."""
        quotas = self.effective(tenant_id)
        now = self._clock()
        start = window_start(now)
        reset = datetime.fromtimestamp(start + WINDOW_S, UTC)
        active_cap = max(quotas.max_concurrent_tasks or 0, 100)
        return quotas, [
            QuotaUse(
                name="max_stored_bytes",
                limit=quotas.max_stored_bytes,
                used=self._usage.stored_bytes(tenant_id) if stored_bytes is None else stored_bytes,
            ),
            QuotaUse(
                name="max_media_hours_per_day",
                limit=quotas.max_media_hours_per_day,
                used=round(self._usage.media_seconds_on(tenant_id, self._day_start().date()) / 3600, 4),
                resets_at=self._day_end(),
            ),
            QuotaUse(
                name="max_concurrent_tasks",
                limit=quotas.max_concurrent_tasks,
                used=self._usage.active_tasks(tenant_id, at_most=active_cap),
            ),
            QuotaUse(
                name="requests_per_minute",
                limit=quotas.requests_per_minute,
                used=self._keys.requests_counted(tenant_id, start),
                resets_at=reset,
            ),
        ]

    def _day_start(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def _day_end(self) -> datetime:
        return self._day_start() + timedelta(days=1)
