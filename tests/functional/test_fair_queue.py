"""The local queue serves tenants fairly: a tenant with 50 assets queued cannot hold back another
tenant's single upload for more than one job per worker."""

from __future__ import annotations

from pathlib import Path

from mediaindex.adapters.local.job_queue import Job, JobQueue
from mediaindex.adapters.local.sqlite import open_stores
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.models import ALL_FEATURES, Asset, Index, Task, TaskKind
from mediaindex.domain.rules import initial_feature_states
from mediaindex.pipeline.spec import steps_for
from mediaindex.ports.stores import MetadataStores

WORKERS = 2


def _task(stores: MetadataStores, tenant: str, task_id: str) -> None:
    index_id = f"idx-{tenant}"
    asset = stores.assets.create(Asset(id=f"a-{task_id}", tenant_id=tenant, index_id=index_id, name="a.mp4"))
    task = Task(
        id=task_id, tenant_id=tenant, asset_id=asset.id, index_id=index_id, kind=TaskKind.INGEST,
        features=initial_feature_states(list(ALL_FEATURES)),
    )  # fmt: skip
    stores.tasks.create_with_asset(task, asset)


def test_one_upload_is_ready_before_the_fifth_of_another_tenants_fifty(tmp_path: Path) -> None:
    db = Database(tmp_path / "jobs.db")
    db.migrate()
    stores = open_stores(db)
    for tenant in ("ten_a", "ten_b"):
        stores.indexes.create(Index(id=f"idx-{tenant}", tenant_id=tenant, name="i"))
    queue = JobQueue(db)
    steps = steps_for(list(ALL_FEATURES), needs_fetch=False)
    clock = iter(float(t) for t in range(10_000))
    queue._now = lambda: next(clock)

    # Given tenant A's 50 assets queued, and two workers busy on them
    for n in range(50):
        _task(stores, "ten_a", f"a{n:02d}")
        queue.enqueue_plan("ten_a", f"a{n:02d}", steps)
    running: list[Job] = []
    for _ in range(WORKERS):
        job = queue.claim()
        assert job is not None
        running.append(job)
    # When tenant B uploads one asset
    _task(stores, "ten_b", "b00")
    queue.enqueue_plan("ten_b", "b00", steps)

    # Then, as the workers finish jobs one at a time, B's task ends before A's fifth
    finished: list[str] = []
    while running:
        job = running.pop(0)
        if queue.complete(job):
            finished.append(job.task_id)
        if (nxt := queue.claim()) is not None:
            running.append(nxt)
        if "b00" in finished:
            break
    a_done = [t for t in finished if t.startswith("a")]
    assert "b00" in finished and len(a_done) < 5, finished


def test_alone_a_tenant_gets_every_worker(tmp_path: Path) -> None:
    db = Database(tmp_path / "jobs.db")
    db.migrate()
    stores = open_stores(db)
    stores.indexes.create(Index(id="idx-ten_a", tenant_id="ten_a", name="i"))
    queue = JobQueue(db)
    for n in range(3):
        _task(stores, "ten_a", f"a{n}")
        queue.enqueue_plan("ten_a", f"a{n}", steps_for(list(ALL_FEATURES), needs_fetch=False))
    # Fairness never idles a worker: with one tenant, every claim still finds its work.
    first, second = queue.claim(), queue.claim()
    assert first is not None and second is not None
