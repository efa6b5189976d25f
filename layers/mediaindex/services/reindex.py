"""Re-indexing: rebuilding an index's transcripts and vectors with other models into a new
generation while search keeps answering from the current one, then swapping atomically.

Each generation is its own key in the search backend (domain.search.search_key); the index row
says which one is searchable. A re-index:
1. allots a generation number never used before (`Index.generations`), so nothing left by a
   cancelled attempt can be mistaken for the new one;
2. walks the index's assets in passes and keeps at most `concurrency` re-index tasks in flight
   (one per asset, a task of kind `reindex` that re-runs transcription when the Whisper model
   changes, and embedding, into the new key; it never touches the asset's own feature states);
3. when a pass finds every asset built for the new generation and nothing in flight, swaps: one
   conditional write of the index row moves `generation` and `models`, and from that write on every
   query reads the new key. The old key is then dropped, and `index.reindexed` is reported;
4. goes on with passes after the swap until one finds nothing left: an upload whose embedding
   started on the old generation just before the swap is rebuilt for the new one (the step runner
   also re-runs an embedding whose generation moved while it ran).

The driver is `advance`: called when a task of the index settles (ReindexProgress wraps the
runtime's event sink), when the index is read, and by the API's start and cancel. Whoever calls it
first takes a short lease on the re-index (a conditional write), so concurrent callers never run
two drivers; a crashed driver's lease lapses and the next call resumes from the stored cursor.
Any rebuild that fails for good fails the re-index: the new generation is dropped and the index
keeps answering from the old one, unchanged."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from mediaindex.domain.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import (
    ACTIVE_STATES,
    Asset,
    AssetStatus,
    ErrorInfo,
    Feature,
    FeatureStatus,
    Index,
    IndexModels,
    Reindex,
    ReindexState,
    Task,
    TaskKind,
    TaskState,
    utcnow,
)
from mediaindex.domain.rules import initial_feature_states
from mediaindex.domain.search import search_key
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.tasks import TaskRepository
from mediaindex.ports.webhooks import EventSink, NoEvents
from mediaindex.services import progress
from mediaindex.services.indexes import live_index, write_index

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4
LEASE_S = 120.0
PAGE = 100
_WRITE_TRIES = 8


class ReindexService:
    def __init__(
        self,
        *,
        indexes: IndexRepository,
        assets: AssetRepository,
        tasks: TaskRepository,
        orchestrator: Orchestrator,
        search: SearchIndex,
        offered_transcription: Callable[[], Collection[str]],
        default_transcription: str,
        events: EventSink | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        lease_s: float = LEASE_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._indexes = indexes
        self._assets = assets
        self._tasks = tasks
        self._orchestrator = orchestrator
        self._search = search
        self._offered = offered_transcription
        self._default = default_transcription
        self.events: EventSink = events or NoEvents()
        self._concurrency = max(1, concurrency)
        self._lease = timedelta(seconds=lease_s)
        self._clock = clock

    # ---- requests ----------------------------------------------------------------------------

    def offered(self) -> list[str]:
        """The Whisper models an index may be re-indexed onto here."""
        return sorted(self._offered())

    def start(self, tenant_id: str, index_id: str, models: IndexModels) -> Index:
        index = self._live_index(tenant_id, index_id)
        if index.reindex is not None and index.reindex.state == ReindexState.RUNNING:
            raise ConflictError("a re-index of this index is already running", code="reindex_running")
        wanted = models.transcription or self._default
        offered = self.offered()
        if wanted not in offered:
            raise ValidationError(
                f"transcription model {wanted!r} is not available here: choose one of {offered}",
                code="model_not_available",
                field="models.transcription",
            )
        target = IndexModels(transcription=wanted)

        def begin(i: Index) -> None:
            if i.reindex is not None and i.reindex.state == ReindexState.RUNNING:
                raise ConflictError("a re-index of this index is already running", code="reindex_running")
            i.generations = max(i.generations, i.generation) + 1
            i.reindex = Reindex(
                id=new_id("rdx"), models=target, generation=i.generations, total=i.asset_count
            )

        self._write(tenant_id, index_id, begin)
        return self._advance_or_wait(tenant_id, index_id)

    def cancel(self, tenant_id: str, index_id: str) -> Index:
        self._live_index(tenant_id, index_id)

        def stop(i: Index) -> None:
            r = i.reindex
            if r is None or r.state != ReindexState.RUNNING:
                raise ConflictError("no re-index of this index is running", code="reindex_not_running")
            if r.swapped:
                raise ConflictError(
                    "the re-index has already swapped generations: it is finishing", code="reindex_swapped"
                )
            r.state = ReindexState.CANCELLED
            r.finished_at = self._clock()
            r.error = ErrorInfo(code="reindex_cancelled", message="cancelled by request")

        index = self._write(tenant_id, index_id, stop)
        assert index.reindex is not None
        self._abandon(index, index.reindex)
        return index

    def get(self, tenant_id: str, index_id: str) -> Index:
        """The index, after moving a running re-index on if nobody else is doing it. A read never
        fails because that did: the re-index waits (its lease lapses) for the next try."""
        index = self._live_index(tenant_id, index_id)
        if index.reindex is None or index.reindex.state != ReindexState.RUNNING:
            return index
        return self._advance_or_wait(tenant_id, index_id)

    def _advance_or_wait(self, tenant_id: str, index_id: str) -> Index:
        """`advance`, or, when that fails (the search backend is down), the index as it stands: the
        re-index waits for the next settle or read, which resumes from its stored place."""
        try:
            return self.advance(tenant_id, index_id)
        except NotFoundError:
            raise
        except Exception:
            log.warning("moving a re-index on failed", extra={"index_id": index_id}, exc_info=True)
            return self._live_index(tenant_id, index_id)

    # ---- the driver ---------------------------------------------------------------------------

    def task_settled(self, task: Task) -> None:
        """A task of an index with a running re-index settled: a slot may be free, or the asset
        that held back the swap may be built now."""
        if task.kind == TaskKind.REINDEX:
            self.advance(task.tenant_id, task.index_id)
            return
        index = self._indexes.get(task.tenant_id, task.index_id)
        if index is not None and index.reindex is not None and index.reindex.state == ReindexState.RUNNING:
            self.advance(task.tenant_id, task.index_id)

    def advance(self, tenant_id: str, index_id: str) -> Index:
        """Settles the tasks in flight, starts more up to the limit, and swaps or finishes when a
        pass is clean. Returns the index as it stands. Does nothing while another caller holds
        the lease."""
        index = self._claim(tenant_id, index_id)
        if index is None:
            found = self._indexes.get(tenant_id, index_id)
            if found is None:
                raise NotFoundError(f"index {index_id} not found", code="index_not_found")
            return found
        assert index.reindex is not None
        r = index.reindex
        try:
            self._settle_in_flight(tenant_id, r)
            if r.failed:
                return self._fail(index, r, f"{r.failed} asset(s) could not be rebuilt")
            clean = self._fill(index, r)
            if clean and not r.in_flight:
                if not r.swapped:
                    return self._swap(index, r)
                return self._finish(index, r)
        except Exception:
            self._release(index, r)
            raise
        return self._release(index, r)

    # ---- internals ----------------------------------------------------------------------------

    def _live_index(self, tenant_id: str, index_id: str) -> Index:
        return live_index(self._indexes, tenant_id, index_id)

    def _write(self, tenant_id: str, index_id: str, change: Callable[[Index], None]) -> Index:
        return write_index(self._indexes, tenant_id, index_id, change, clock=self._clock)

    def _claim(self, tenant_id: str, index_id: str) -> Index | None:
        """Takes the driver's lease; None when there is nothing to drive or someone holds it."""
        for _ in range(_WRITE_TRIES):
            index = self._indexes.get(tenant_id, index_id)
            if index is None or index.deleting:
                return None
            r = index.reindex
            now = self._clock()
            if r is None or r.state != ReindexState.RUNNING:
                return None
            if r.lease_until is not None and r.lease_until > now:
                return None
            r.lease_until = now + self._lease
            try:
                return self._indexes.update(index)
            except ConflictError:
                continue
        return None

    def _store(self, index: Index, r: Reindex) -> Index:
        """Writes the driver's progress (it holds the lease, so only a rename can race it)."""
        mine = r.model_copy(deep=True)

        def put(i: Index) -> None:
            i.reindex = mine
            if mine.swapped and mine.state == ReindexState.RUNNING and i.generation != mine.generation:
                i.generation, i.models = mine.generation, mine.models

        return self._write(index.tenant_id, index.id, put)

    def _release(self, index: Index, r: Reindex) -> Index:
        r.lease_until = None
        return self._store(index, r)

    def _settle_in_flight(self, tenant_id: str, r: Reindex) -> None:
        still: dict[str, str] = {}
        for task_id, asset_id in r.in_flight.items():
            task = self._tasks.get(tenant_id, task_id)
            if task is None:
                continue  # its asset was deleted: nothing to rebuild
            if task.state in (TaskState.QUEUED, TaskState.PROCESSING):
                still[task_id] = asset_id
            elif task.state == TaskState.COMPLETED and all(
                fs.state in (FeatureStatus.COMPLETED, FeatureStatus.NA) for fs in task.features.values()
            ):
                r.done += 1
            else:
                r.failed += 1
                log.warning("re-index task failed", extra={"task_id": task_id, "state": str(task.state)})
        r.in_flight = still

    def _fill(self, index: Index, r: Reindex) -> bool:
        """Starts tasks for the assets not built yet, from the cursor, until the slots are full or
        the pass ends. True when a whole pass found nothing to do (every asset built)."""
        while len(r.in_flight) < self._concurrency:
            page = self._assets.list(index.tenant_id, index_id=index.id, limit=PAGE, cursor=r.cursor)
            building = set(r.in_flight.values())
            for asset in page.data:
                if asset.id in building:
                    r.dirty = True
                    continue
                verdict = self._verdict(asset, r)
                if verdict == "build":
                    if len(r.in_flight) >= self._concurrency:
                        return False  # the cursor stays before this page: it is read again
                    self._start_task(index, r, asset)
                    r.dirty = True
                elif verdict == "wait":
                    r.dirty = True
                elif r.passes == 0:
                    r.total = max(0, r.total - 1)  # counted at the start, nothing to rebuild
            if page.next_cursor:
                r.cursor = page.next_cursor
                continue
            clean = not r.dirty and not r.in_flight
            r.cursor, r.dirty = None, False
            r.passes += 1
            return clean
        return False

    def _verdict(self, asset: Asset, r: Reindex) -> str:
        """`build` (start a task), `wait` (its ingest or a rebuild is still running) or `skip`."""
        embedding = asset.features.get(Feature.EMBEDDING)
        if asset.status == AssetStatus.AWAITING_UPLOAD or asset.error is not None or embedding is None:
            return "skip"
        if embedding.state in ACTIVE_STATES:
            return "wait"
        if embedding.state != FeatureStatus.COMPLETED:
            return "skip"  # failed or cancelled: it has no documents to rebuild
        if (asset.search_generation or 1) == r.generation:
            return "skip"
        return "build"

    def _start_task(self, index: Index, r: Reindex, asset: Asset) -> None:
        features = [Feature.EMBEDDING]
        transcribed = asset.features.get(Feature.TRANSCRIPTION)
        current = index.models.transcription or self._default
        if (
            transcribed is not None
            and transcribed.state == FeatureStatus.COMPLETED
            and r.models.transcription != current
        ):
            features.insert(0, Feature.TRANSCRIPTION)
        task = Task(
            id=new_id("tsk"),
            tenant_id=index.tenant_id,
            asset_id=asset.id,
            index_id=index.id,
            kind=TaskKind.REINDEX,
            features=initial_feature_states(features),
            generation=r.generation,
            models=r.models,
        )
        try:
            task, stored = self._tasks.create_with_asset(task, asset)
        except (ConflictError, NotFoundError):
            return  # the asset changed or went meanwhile: the next pass looks again
        r.in_flight[task.id] = asset.id
        if r.passes > 0:
            r.total += 1  # uploaded since the first pass counted the index
        self._orchestrator.start(task, stored)

    def _swap(self, index: Index, r: Reindex) -> Index:
        old = index.generation
        # Queries must find every rebuilt document the moment they move (OpenSearch refreshes
        # writes about a second later on its own).
        self._search.make_visible(search_key(index.id, r.generation))
        r.swapped = True
        r.lease_until = None
        index = self._store(index, r)  # the one write that moves every query to the new key
        self._search.delete_index(index.tenant_id, search_key(index.id, old))
        log.info("re-index swapped", extra={"index_id": index.id, "generation": r.generation})
        # Stragglers (an ingest that wrote the old generation just before) are found by the next
        # pass; a clean one finishes.
        return self.advance(index.tenant_id, index.id)

    def _finish(self, index: Index, r: Reindex) -> Index:
        r.state = ReindexState.COMPLETED
        r.total = r.done
        r.finished_at = self._clock()
        r.lease_until = None
        index = self._store(index, r)
        # Anything a late writer left under an older key goes too (each drop is idempotent).
        for generation in range(1, r.generation):
            self._search.delete_index(index.tenant_id, search_key(index.id, generation))
        self.events.emit(index.tenant_id, "index.reindexed", r.id, reindexed_data(index, r))
        return index

    def _fail(self, index: Index, r: Reindex, message: str) -> Index:
        r.state = ReindexState.FAILED
        r.finished_at = self._clock()
        r.error = ErrorInfo(code="reindex_failed", message=message)
        r.lease_until = None
        index = self._store(index, r)
        self._abandon(index, r)
        return index

    def _abandon(self, index: Index, r: Reindex) -> None:
        """Drops the rebuild's generation and stops its tasks; the searchable one is untouched. A
        task that still runs writes nothing: its generation is no longer wanted (the runner)."""
        if not r.swapped:
            self._search.delete_index(index.tenant_id, search_key(index.id, r.generation))
        for task_id in r.in_flight:
            task = self._tasks.get(index.tenant_id, task_id)
            if task is None or task.state not in (TaskState.QUEUED, TaskState.PROCESSING):
                continue
            try:
                task, _ = self._tasks.mutate_with_asset(index.tenant_id, task_id, progress.cancel)
                self._orchestrator.cancel(task)
            except Exception:
                log.warning("stopping a re-index task failed", extra={"task_id": task_id}, exc_info=True)


def reindexed_data(index: Index, r: Reindex) -> dict[str, Any]:
    return {
        "index_id": index.id,
        "reindex_id": r.id,
        "generation": r.generation,
        "models": r.models.model_dump(mode="json"),
        "assets": r.done,
    }


class ReindexProgress(EventSink):
    """The runtime's event sink, with re-indexes moved on as tasks settle. Re-index tasks are
    internal: only `index.reindexed` is reported for them, never task or asset events. Bound to
    its ReindexService after both are built (the runner that reports to it comes first)."""

    def __init__(self, inner: EventSink | None = None) -> None:
        self.inner: EventSink = inner or NoEvents()
        self._reindex: ReindexService | None = None

    def bind(self, reindex: ReindexService) -> None:
        self._reindex = reindex

    def task_settled(self, task: Task, asset: Asset) -> None:
        if task.kind != TaskKind.REINDEX:
            self.inner.task_settled(task, asset)
        if self._reindex is None:
            return
        try:
            self._reindex.task_settled(task)
        except Exception:
            # Never fails the task's settlement: the next settle or read of the index resumes it.
            log.warning("moving a re-index on failed", extra={"index_id": task.index_id}, exc_info=True)

    def emit(self, tenant_id: str, event: str, subject: str, data: dict[str, Any]) -> None:
        self.inner.emit(tenant_id, event, subject, data)
