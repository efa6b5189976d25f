"""Indexes: named collections of assets with default features."""

from __future__ import annotations

from collections.abc import Callable

from mediaindex.domain.errors import NotFoundError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import Feature, Index, Page, utcnow
from mediaindex.ports.indexes import IndexRepository
from mediaindex.services.cleanup import CleanupService

Background = Callable[[Callable[[], None]], None]


class IndexService:
    def __init__(self, indexes: IndexRepository, cleanup: CleanupService, background: Background) -> None:
        self._indexes = indexes
        self._cleanup = cleanup
        self._background = background

    def create(
        self,
        tenant_id: str,
        *,
        name: str,
        description: str | None,
        default_features: list[Feature] | None,
        is_sample: bool,
    ) -> Index:
        index = Index(
            id=new_id("idx"), tenant_id=tenant_id, name=name, description=description, is_sample=is_sample
        )
        if default_features is not None:
            index.default_features = default_features
        return self._indexes.create(index)

    def get(self, tenant_id: str, index_id: str) -> Index:
        index = self._indexes.get(tenant_id, index_id)
        if index is None or index.deleting:
            raise NotFoundError(f"index {index_id} not found", code="index_not_found")
        return index

    def list_indexes(self, tenant_id: str, *, limit: int, cursor: str | None) -> Page[Index]:
        page = self._indexes.list(tenant_id, limit=limit, cursor=cursor)
        page.data = [i for i in page.data if not i.deleting]
        return page

    def update(
        self,
        tenant_id: str,
        index_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        default_features: list[Feature] | None = None,
        fields_set: set[str],
    ) -> Index:
        index = self.get(tenant_id, index_id)
        if "name" in fields_set and name is not None:
            index.name = name
        if "description" in fields_set:
            index.description = description
        if "default_features" in fields_set and default_features is not None:
            index.default_features = default_features
        index.updated_at = utcnow()
        return self._indexes.update(index)

    def delete(self, tenant_id: str, index_id: str) -> None:
        """Hides the index at once; its assets, files, segments and vectors go in the background."""
        index = self.get(tenant_id, index_id)
        index.deleting = True
        index.updated_at = utcnow()
        self._indexes.update(index)
        self._background(lambda: self._cleanup.purge_index(tenant_id, index_id))
