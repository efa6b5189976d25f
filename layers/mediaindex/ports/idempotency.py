"""Idempotency records: the first response to a POST with an Idempotency-Key, per tenant."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mediaindex.domain.models import IdempotencyRecord


class IdempotencyRepository(ABC):
    @abstractmethod
    def get(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        """Expired records read as None."""

    @abstractmethod
    def put(self, record: IdempotencyRecord) -> None:
        """ConflictError when a live record with that key exists."""
