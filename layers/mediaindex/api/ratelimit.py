"""Per-key token buckets for the local runtime (API Gateway throttles in AWS)."""

from __future__ import annotations

import math
import threading
import time

from mediaindex.domain.errors import RateLimitedError


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key_id: str) -> None:
        if self._rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                raise RateLimitedError(
                    "too many requests for this API key",
                    retry_after_s=max(1, math.ceil((1 - tokens) / self._rate)),
                )
            self._buckets[key_id] = (tokens - 1.0, now)
