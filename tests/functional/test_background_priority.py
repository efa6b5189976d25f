"""The local runtime's background work runs below the API's CPU priority (Linux): the workers, the
processes their steps start (ffmpeg), the model preload and the threads a model starts there
(CTranslate2's workers), while the thread that built the runtime keeps its own priority."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mediaindex.adapters.local.cpu_priority import lower_this_thread
from mediaindex.adapters.local.job_queue import JobQueue
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.worker_pool import WorkerPool

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")


def thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def task_nices() -> dict[int, int]:
    """Every thread of this process: its id -> its nice value (field 19 of /proc/.../stat). A thread
    that ends while they are read is left out."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[int(task.name)] = int(fields[16])
    return out


class NoSteps:
    def run_step(self, tenant_id: str, task_id: str, step: str) -> bool:
        raise AssertionError("no step is queued")

    def fail_step(self, *args: object) -> None:
        raise AssertionError("no step is queued")


def run_one_job(tmp_path: Path, **pool_args: int) -> dict[str, int]:
    """Starts a pool of one worker and gives it a job (an index purge batch): the priority the job
    ran at, and that of a process it started."""
    db = Database(tmp_path / "jobs.db")
    db.migrate()
    queue = JobQueue(db)
    wakeup, done = threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def job(tenant_id: str, index_id: str) -> bool:
        seen["job"] = thread_nice()
        child = subprocess.run(["sh", "-c", "cut -d' ' -f19 /proc/$$/stat"], capture_output=True, text=True)
        seen["child"] = int(child.stdout)
        done.set()
        return True

    pool = WorkerPool(queue, NoSteps(), wakeup, workers=1, backoff_s=0.1, **pool_args)  # type: ignore[arg-type]
    pool.set_purger(job)
    pool.start()
    try:
        queue.enqueue_purge("ten_1", "idx_1")
        wakeup.set()
        assert done.wait(10)
    finally:
        pool.stop()
        db.close()
    return seen


def test_workers_and_the_processes_their_jobs_start_run_below_the_caller(tmp_path: Path) -> None:
    before = thread_nice()
    seen = run_one_job(tmp_path, nice=5)
    expected = min(19, before + 5)
    assert seen == {"job": expected, "child": expected}
    assert thread_nice() == before  # the thread that started the pool is as it was


def test_nice_zero_leaves_the_workers_at_the_callers_priority(tmp_path: Path) -> None:
    assert run_one_job(tmp_path) == {"job": thread_nice(), "child": thread_nice()}


# Run in a process of its own: in the test process, threads other tests left behind may start or
# end while the transcriber loads, and would be counted as its own.
_PRELOAD = """
import json, sys
from pathlib import Path
from tests.functional.test_background_priority import task_nices, thread_nice
from mediaindex.bootstrap.pipeline import preload_models
from mediaindex.ml.registry import ModelRegistry, build_transcriber
from mediaindex.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), workers=2)
transcriber = build_transcriber(settings)
models = ModelRegistry(settings, transcriber=transcriber, clip=None)
before, caller = task_nices(), thread_nice()
preload_models(models, nice=7).join(timeout=120)
started = {tid: nice for tid, nice in task_nices().items() if tid not in before}
print(json.dumps({"loaded": transcriber.loaded, "replicas": transcriber.replicas, "caller": caller,
                  "caller_after": thread_nice(), "started": list(started.values())}))
"""


def test_whispers_own_threads_run_at_the_preloads_lowered_priority(tmp_path: Path) -> None:
    # The real transcriber: CTranslate2 starts its workers when the model is built, on the preload
    # thread, and they keep its priority when the worker threads later call them.
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "layers"), str(root)])}
    run = subprocess.run(
        [sys.executable, "-c", _PRELOAD, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["loaded"]
    assert len(seen["started"]) >= seen["replicas"]  # CTranslate2's workers, at least one a replica
    assert set(seen["started"]) == {min(19, seen["caller"] + 7)}
    assert seen["caller_after"] == seen["caller"]


def test_a_thread_cannot_be_lowered_past_the_last_nice_value() -> None:
    seen: list[int | None] = []
    worker = threading.Thread(target=lambda: seen.extend([lower_this_thread(15), lower_this_thread(15)]))
    worker.start()
    worker.join()
    assert seen == [min(19, thread_nice() + 15), 19]
    assert lower_this_thread(0) is None
