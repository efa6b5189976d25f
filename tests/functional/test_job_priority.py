"""The local queue hands out the critical path first: within a task, the steps others wait on
(transcription and render, which embedding joins) in the spec's order, transcription first; across
tasks, the older task first."""

from __future__ import annotations

from pathlib import Path

from mediaindex.adapters.local.job_queue import Job, JobQueue
from mediaindex.adapters.local.sqlite import open_stores
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.models import ALL_FEATURES, Asset, Index, Task, TaskKind
from mediaindex.domain.rules import initial_feature_states
from mediaindex.pipeline.spec import steps_for

TASK_IDS = ["task0", "task1", "task2", "task3", "task4", "task5", "task6", "task7", "old", "new"]


def _queue(tmp_path: Path) -> JobQueue:
    """A queue over a database that holds a task (and its asset) for every id in TASK_IDS."""
    db = Database(tmp_path / "jobs.db")
    db.migrate()
    stores = open_stores(db)
    stores.indexes.create(Index(id="idx", tenant_id="t", name="i"))
    for task_id in TASK_IDS:
        asset = stores.assets.create(Asset(id=f"a-{task_id}", tenant_id="t", index_id="idx", name="a.mp4"))
        task = Task(
            id=task_id, tenant_id="t", asset_id=asset.id, index_id="idx", kind=TaskKind.INGEST,
            features=initial_feature_states(list(ALL_FEATURES)),
        )  # fmt: skip
        stores.tasks.create_with_asset(task, asset)
    return JobQueue(db)


def _claim(queue: JobQueue) -> Job:
    job = queue.claim()
    assert job is not None
    return job


def test_transcription_is_claimed_before_render_and_embedding_after_both(tmp_path: Path) -> None:
    queue = _queue(tmp_path)
    clock = iter(float(t) for t in range(100))
    queue._now = lambda: next(clock)
    # Job ids are drawn at random: many tasks, so a claim order that followed the id would show.
    for n in range(8):
        queue.enqueue_plan("t", f"task{n}", steps_for(list(ALL_FEATURES), needs_fetch=False))
        probe = _claim(queue)
        assert (probe.task_id, probe.step) == (f"task{n}", "probe")
        queue.complete(probe)
        first, second = _claim(queue), _claim(queue)
        assert (first.task_id, first.step) == (f"task{n}", "transcription")
        assert (second.task_id, second.step) == (f"task{n}", "render")
        # Transcription ends while render still runs: embedding needs both, so nothing is ready.
        queue.complete(first)
        assert queue.claim() is None
        queue.complete(second)
        third = _claim(queue)
        assert (third.task_id, third.step) == (f"task{n}", "embedding")
        queue.complete(third)
    assert queue.claim() is None
    assert queue.counts() == {"done": 8 * 4}


def test_an_older_task_goes_before_a_newer_tasks_critical_step(tmp_path: Path) -> None:
    queue = _queue(tmp_path)
    clock = iter(float(t) for t in range(100))
    queue._now = lambda: next(clock)
    queue.enqueue_plan("t", "old", steps_for(list(ALL_FEATURES), needs_fetch=False))
    queue.complete(_claim(queue))  # old: probe
    old_first = _claim(queue)
    assert old_first.step == "transcription"
    queue.enqueue_plan("t", "new", steps_for(list(ALL_FEATURES), needs_fetch=False))
    # The new task's probe heads its own critical path, yet the old task's ready leaves come first.
    assert [(j.task_id, j.step) for j in (_claim(queue), _claim(queue))] == [
        ("old", "render"),
        ("new", "probe"),
    ]
