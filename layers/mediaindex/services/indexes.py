"""Indexes: named collections of assets with default features.

Deleting an index hides it at once (`deleting`), and with it its assets (`VisibleAssets`), then
purges it as durable work that survives a crash: where this process runs a worker pool, a purge
job row in its job store, run in batches and resumed after a restart (`JobPurges` in bootstrap);
on a deployment, noted in a ledger and handed to a job that resumes the ledger (`HandedOffPurges`:
the reconcile Lambda, kicked at once and run on its schedule); elsewhere (a Lambda without that
job) in bounded batches inline, the ledger finished by `resume_purges` (the sweep). The name is
free again once the purge has removed the index row."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import Asset, AssetStatus, Feature, Index, MediaType, Page, utcnow
from mediaindex.domain.rules import validate_index_name
from mediaindex.ports.assets import AssetFn, AssetRepository
from mediaindex.ports.indexes import IndexRepository, PurgeLedger
from mediaindex.services.cleanup import CleanupService

log = logging.getLogger(__name__)
_UPDATE_TRIES = 8


def live_index(indexes: IndexRepository, tenant_id: str, index_id: str) -> Index:
    """The tenant's index; NotFoundError (`index_not_found`) when it is missing or being deleted."""
    index = indexes.get(tenant_id, index_id)
    if index is None or index.deleting:
        raise NotFoundError(f"index {index_id} not found", code="index_not_found")
    return index


def write_index(
    indexes: IndexRepository,
    tenant_id: str,
    index_id: str,
    change: Callable[[Index], None],
    *,
    clock: Callable[[], datetime] = utcnow,
) -> Index:
    """Applies `change` to the stored index and writes it, again on a lost race: a running
    re-index's driver writes the row as it goes (services/reindex.py), as do renames."""
    for attempt in range(_UPDATE_TRIES):
        index = live_index(indexes, tenant_id, index_id)
        change(index)
        index.updated_at = clock()
        try:
            return indexes.update(index)
        except ConflictError as e:
            if e.code not in ("version_conflict", "write_contention") or attempt == _UPDATE_TRIES - 1:
                raise
    raise AssertionError("unreachable")


class Purges(Protocol):
    """How a runtime purges a deleted index."""

    def requested(self, tenant_id: str, index_id: str) -> None:
        """Called before the index is marked `deleting`: note the purge durably, if needed."""

    def start(self, tenant_id: str, index_id: str) -> None:
        """Called once the index is marked: run the purge, or hand it to whatever runs it."""

    def resume(self, *, budget_s: float) -> int:
        """The sweep: continue unfinished purges (within `budget_s` where it runs them itself)."""


class InlinePurges:
    """A runtime without a worker pool (a Lambda is frozen after its answer): the request purges
    in batches for at most `budget_s`; the ledger keeps what is unfinished for the sweep."""

    def __init__(
        self,
        indexes: IndexRepository,
        cleanup: CleanupService,
        ledger: PurgeLedger | None,
        *,
        batch: int,
        budget_s: float,
    ) -> None:
        self._indexes = indexes
        self._cleanup = cleanup
        self._ledger = ledger
        self._batch = batch
        self._budget_s = budget_s

    def requested(self, tenant_id: str, index_id: str) -> None:
        if self._ledger is not None:
            self._ledger.add(tenant_id, index_id)

    def start(self, tenant_id: str, index_id: str) -> None:
        if self._cleanup.purge_index(tenant_id, index_id, batch=self._batch, budget_s=self._budget_s):
            if self._ledger is not None:
                self._ledger.remove(tenant_id, index_id)
        else:
            log.info("index purge continues later", extra={"index_id": index_id})

    def resume(self, *, budget_s: float, min_age_s: float = 60.0) -> int:
        """The sweep: resumes every noted purge (oldest first) within `budget_s`. A note whose
        index is gone, or older than `min_age_s` and never marked (the request died between the
        note and the mark), is dropped. Returns how many purges finished."""
        if self._ledger is None:
            return 0
        finished = 0
        deadline = time.monotonic() + budget_s  # for all of them together
        for entry in self._ledger.pending(limit=100):
            index = self._indexes.get(entry.tenant_id, entry.index_id)
            if index is None or (not index.deleting and entry.age_s > min_age_s):
                self._ledger.remove(entry.tenant_id, entry.index_id)
                continue
            if not index.deleting:
                continue
            # Each run purges at least one batch, however small its budget.
            done = self._cleanup.purge_index(
                entry.tenant_id, entry.index_id, batch=self._batch, budget_s=deadline - time.monotonic()
            )
            if done:
                self._ledger.remove(entry.tenant_id, entry.index_id)
                finished += 1
            if not done or time.monotonic() >= deadline:
                break  # out of budget
        return finished


class HandedOffPurges:
    """The request purges nothing: it notes the purge in the ledger, drops the index's search
    documents (one call per generation; the job's role reaches no search domain) and `kick`s the
    job that resumes the ledger (an asynchronous invoke). A failed kick is logged: the job's
    schedule finishes the purge. Failed drops are logged too: the index is hidden either way."""

    def __init__(
        self,
        indexes: IndexRepository,
        cleanup: CleanupService,
        ledger: PurgeLedger,
        kick: Callable[[], None],
    ) -> None:
        self._indexes = indexes
        self._cleanup = cleanup
        self._ledger = ledger
        self._kick = kick

    def requested(self, tenant_id: str, index_id: str) -> None:
        self._ledger.add(tenant_id, index_id)

    def start(self, tenant_id: str, index_id: str) -> None:
        # Documents first: the job may remove the index row (and its generation count) at once.
        try:
            index = self._indexes.get(tenant_id, index_id)
            if index is not None:
                self._cleanup.drop_documents(tenant_id, index_id, index.generations)
        except Exception:
            log.exception("search documents of a deleted index not dropped", extra={"index_id": index_id})
        try:
            self._kick()
        except Exception:
            log.exception("purge job not started: its schedule runs it", extra={"index_id": index_id})

    def resume(self, *, budget_s: float) -> int:
        return 0  # the job resumes the ledger, not this process


class IndexService:
    def __init__(self, indexes: IndexRepository, cleanup: CleanupService, purges: Purges) -> None:
        self._indexes = indexes
        self._cleanup = cleanup
        self._purges = purges

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
            id=new_id("idx"),
            tenant_id=tenant_id,
            name=validate_index_name(name),  # NFC, no control or bidi characters
            description=description,
            is_sample=is_sample,
        )
        if default_features is not None:
            index.default_features = default_features
        return self._indexes.create(index)

    def get(self, tenant_id: str, index_id: str) -> Index:
        return live_index(self._indexes, tenant_id, index_id)

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
        if "name" in fields_set and name is not None:
            name = validate_index_name(name)

        def change(index: Index) -> None:
            if "name" in fields_set and name is not None:
                index.name = name
            if "description" in fields_set:
                index.description = description
            if "default_features" in fields_set and default_features is not None:
                index.default_features = default_features

        return self._write(tenant_id, index_id, change)

    def delete(self, tenant_id: str, index_id: str) -> None:
        """Hides the index and its assets at once; they, their files, segments and vectors go in
        the background, durably (a crash part-way resumes)."""
        self.get(tenant_id, index_id)
        self._purges.requested(tenant_id, index_id)

        def mark(index: Index) -> None:
            index.deleting = True

        self._write(tenant_id, index_id, mark)
        self._purges.start(tenant_id, index_id)

    def _write(self, tenant_id: str, index_id: str, change: Callable[[Index], None]) -> Index:
        return write_index(self._indexes, tenant_id, index_id, change)

    def resume_purges(self, *, budget_s: float = 60.0) -> int:
        """Continues every purge left unfinished (a crash, a Lambda out of time): the sweep a
        runtime runs at start-up and periodically. Returns how many finished now."""
        return self._purges.resume(budget_s=budget_s)

    def purge_batch(self, tenant_id: str, index_id: str, *, max_assets: int = 100) -> bool:
        """One batch of a deleted index's purge (what a purge job runs). True once it is gone."""
        return self._cleanup.purge_index_batch(tenant_id, index_id, max_assets=max_assets)


class VisibleAssets(AssetRepository):
    """The asset repository as the API's services read it: the assets of an index being deleted
    are gone already (not readable, not listed, not counted), though the purge removes them
    over time. Writes pass through; the pipeline and the purge use the repository itself."""

    def __init__(self, assets: AssetRepository, indexes: IndexRepository) -> None:
        self._assets = assets
        self._indexes = indexes

    def _hidden(self, tenant_id: str, index_id: str, seen: dict[str, bool] | None = None) -> bool:
        if seen is not None and index_id in seen:
            return seen[index_id]
        index = self._indexes.get(tenant_id, index_id)
        hidden = index is None or index.deleting
        if seen is not None:
            seen[index_id] = hidden
        return hidden

    def create(self, asset: Asset) -> Asset:
        return self._assets.create(asset)

    def get(self, tenant_id: str, asset_id: str) -> Asset | None:
        asset = self._assets.get(tenant_id, asset_id)
        if asset is None or self._hidden(tenant_id, asset.index_id):
            return None
        return asset

    def list(
        self,
        tenant_id: str,
        *,
        index_id: str | None = None,
        status: AssetStatus | None = None,
        media_type: MediaType | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[Asset]:
        page = self._assets.list(
            tenant_id, index_id=index_id, status=status, media_type=media_type, limit=limit, cursor=cursor
        )
        seen: dict[str, bool] = {}
        # A page may come back shorter than `limit` (even empty) with a next_cursor: lists promise
        # only that following next_cursor reaches every visible asset.
        page.data = [a for a in page.data if not self._hidden(tenant_id, a.index_id, seen)]
        return page

    def mutate(self, tenant_id: str, asset_id: str, fn: AssetFn) -> Asset:
        return self._assets.mutate(tenant_id, asset_id, fn)

    def delete(self, tenant_id: str, asset_id: str) -> Asset | None:
        return self._assets.delete(tenant_id, asset_id)
