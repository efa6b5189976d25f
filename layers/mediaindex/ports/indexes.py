"""Indexes: a tenant's searchable collections. Every call names the tenant."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from mediaindex.domain.models import Index, Page


class IndexRepository(ABC):
    @abstractmethod
    def create(self, index: Index) -> Index:
        """ConflictError(`index_name_already_exists`) when the tenant has an index of that name."""

    @abstractmethod
    def get(self, tenant_id: str, index_id: str) -> Index | None: ...

    @abstractmethod
    def list(self, tenant_id: str, *, limit: int, cursor: str | None) -> Page[Index]:
        """Newest first, paged by an opaque cursor."""

    @abstractmethod
    def update(self, index: Index) -> Index:
        """Writes `index` if its stored version is still `index.version`; returns it with version+1.
        ConflictError on a lost race or a duplicate name. Never changes `asset_count`."""

    @abstractmethod
    def delete(self, tenant_id: str, index_id: str) -> bool:
        """Removes the index row (its assets must already be gone). False when it was not there."""


@dataclass(frozen=True)
class PendingPurge:
    tenant_id: str
    index_id: str
    age_s: float  # since the purge was noted


class PurgeLedger(ABC):
    """Index purges asked for and not finished, across tenants: what the sweep of a runtime
    without a worker pool (a Lambda) resumes. Noted before the index is marked `deleting`."""

    @abstractmethod
    def add(self, tenant_id: str, index_id: str) -> None:
        """Notes a purge (a second note of the same index keeps the first one's age)."""

    @abstractmethod
    def remove(self, tenant_id: str, index_id: str) -> None: ...

    @abstractmethod
    def pending(self, *, limit: int) -> list[PendingPurge]:
        """Oldest first."""
