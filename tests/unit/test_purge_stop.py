"""Stopping the local worker pool while an index purge batch runs on a background thread (a runtime
whose workers are not started purges that way): stop() waits for the batch, so the job database is
never closed under a write (closing a SQLite connection in use can crash the process)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from mediaindex.adapters.local.job_queue import JobQueue
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.worker_pool import WorkerPool


class NoSteps:
    def run_step(self, tenant_id: str, task_id: str, step: str) -> bool:
        raise AssertionError("no step is queued")

    def fail_step(self, *args: object) -> None:
        raise AssertionError("no step is queued")


def test_stop_waits_for_the_purge_batch_in_flight_before_the_database_closes(tmp_path: Path) -> None:
    db = Database(tmp_path / "jobs.db")
    db.migrate()
    queue = JobQueue(db)
    pool = WorkerPool(queue, NoSteps(), threading.Event(), workers=1, backoff_s=0.1)  # type: ignore[arg-type]
    in_batch, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_purger(tenant_id: str, index_id: str) -> bool:
        in_batch.set()
        release.wait(5)
        time.sleep(0.2)  # still working when stop() is called
        order.append("batch done")
        return True

    pool.set_purger(slow_purger)
    queue.enqueue_purge("ten_1", "idx_1")
    runner = threading.Thread(target=pool.run_purges, daemon=True)
    runner.start()
    assert in_batch.wait(5)

    # When the runtime closes while the batch runs
    release.set()
    pool.stop(timeout_s=0.05)
    order.append("stopped")
    db.close()

    # Then stop returned only after the batch, whose row was settled before the database closed
    assert order == ["batch done", "stopped"]
    runner.join(5)
    assert not runner.is_alive()
    reopened = Database(tmp_path / "jobs.db")
    assert JobQueue(reopened).pending_purges() == []
    reopened.close()


def test_stop_returns_at_once_with_no_purge_running(tmp_path: Path) -> None:
    db = Database(tmp_path / "jobs.db")
    db.migrate()
    pool = WorkerPool(JobQueue(db), NoSteps(), threading.Event(), workers=1, backoff_s=0.1)  # type: ignore[arg-type]
    started = time.monotonic()
    pool.stop(timeout_s=0.05)
    assert time.monotonic() - started < 1.0
    assert pool.run_purges() == 0  # a stopped pool starts no purge
    db.close()
