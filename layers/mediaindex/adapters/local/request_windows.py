"""Requests per tenant per window, counted in memory: the local runtime is one process (its data
directory is locked to it), so a counter here sees every request of the tenant."""

from __future__ import annotations

import threading


class RequestWindows:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # tenant -> (window start, count)
        self._lock = threading.Lock()

    def count(self, tenant_id: str, window_start: int, limit: int) -> bool:
        with self._lock:
            start, n = self._counts.get(tenant_id, (window_start, 0))
            if start != window_start:  # a new window; the old one is forgotten, so memory stays flat
                n = 0
            if n >= limit:
                return False
            self._counts[tenant_id] = (window_start, n + 1)
            return True

    def counted(self, tenant_id: str, window_start: int) -> int:
        with self._lock:
            start, n = self._counts.get(tenant_id, (window_start, 0))
            return n if start == window_start else 0
