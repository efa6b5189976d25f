"""The local executor: an Orchestrator over the SQLite job queue and a pool of worker threads
inside the server process. Steps that exceed their timeout lose their lease and are retried or
failed by the reaper; a restart requeues whatever was running."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from mediaindex.adapters.local.cpu_priority import lower_this_thread
from mediaindex.adapters.local.job_queue import Job, JobQueue, PurgeJob
from mediaindex.domain.errors import MediaError
from mediaindex.domain.failures import error_info
from mediaindex.domain.models import Asset, ErrorInfo, Task, TaskKind
from mediaindex.pipeline.spec import STEP_BY_NAME, steps_for
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.step_runner import StepRunner

log = logging.getLogger(__name__)

# One batch of an index purge: (tenant_id, index_id) -> True once the index is gone.
Purger = Callable[[str, str], bool]
# How long stop() waits for a purge batch in flight (one batch: purge_batch_assets assets).
PURGE_STOP_WAIT_S = 30.0


class LocalOrchestrator(Orchestrator):
    def __init__(self, queue: JobQueue, *, max_attempts: int | None = None) -> None:
        self._queue = queue
        self._max_attempts = max_attempts
        self.wakeup = threading.Event()

    def start(self, task: Task, asset: Asset) -> None:
        needs_fetch = bool(asset.source_url and task.kind == TaskKind.INGEST)
        self._queue.enqueue_plan(
            task.tenant_id,
            task.id,
            steps_for(list(task.features), needs_fetch=needs_fetch),
            max_attempts=self._max_attempts,
        )
        self.wakeup.set()

    def cancel(self, task: Task) -> None:
        self._queue.cancel_task(task.id)


class WorkerPool:
    def __init__(
        self,
        queue: JobQueue,
        runner: StepRunner,
        wakeup: threading.Event,
        *,
        workers: int,
        backoff_s: float,
        poll_s: float = 0.5,
        nice: int = 0,
    ) -> None:
        self._queue = queue
        self._runner = runner
        self._wakeup = wakeup
        self._workers = workers
        self._backoff = backoff_s
        self._poll = poll_s
        self._nice = nice  # how far below the caller's CPU priority the workers run (cpu_priority.py)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._purger: Purger | None = None
        # Purge runs on callers' threads (run_purges): stop() waits for them, so the database is
        # never closed under a batch still writing (closing a connection in use can crash SQLite).
        self._purge_runs = 0
        self._purges_idle = threading.Condition()

    def set_purger(self, purger: Purger) -> None:
        """What runs one batch of an index purge (the services, wired by the composition root)."""
        self._purger = purger

    def start(self) -> None:
        requeued = self._queue.recover_after_restart()
        if requeued:
            log.info("resumed jobs after restart", extra={"count": requeued})
        for i in range(self._workers):
            t = threading.Thread(target=self._loop, name=f"mi-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        reaper = threading.Thread(target=self._reap_loop, name="mi-reaper", daemon=True)
        reaper.start()
        self._threads.append(reaper)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stops the workers, waiting at most `timeout_s` in all. A worker still inside a step then
        is left to die with the process (its threads are daemons): its job row stays `running`,
        and the next start requeues it, so nothing is recorded half-done."""
        self._stop.set()
        self._wakeup.set()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        # A purge batch is bounded (purge_batch_assets): it is waited for past the workers' deadline.
        with self._purges_idle:
            self._purges_idle.wait_for(
                lambda: self._purge_runs == 0, timeout=max(timeout_s, PURGE_STOP_WAIT_S)
            )

    def run_until_idle(self, max_jobs: int = 10_000) -> int:
        """Runs queued jobs (steps, then purge batches) on the calling thread until none is ready
        (tests, CLI one-shots)."""
        ran = 0
        while ran < max_jobs:
            if (job := self._queue.claim()) is not None:
                self._execute(job)
            elif self._purger is not None and (purge := self._queue.claim_purge()) is not None:
                self._execute_purge(purge)
            else:
                break
            ran += 1
        return ran

    def run_purges(self) -> int:
        """Runs queued purge batches on the calling thread until none is ready (a runtime whose
        workers are not started purges this way, on a thread of its own)."""
        ran = 0
        with self._purges_idle:
            self._purge_runs += 1
        try:
            while self._purger is not None and not self._stop.is_set():
                purge = self._queue.claim_purge()
                if purge is None:
                    break
                self._execute_purge(purge)
                ran += 1
        finally:
            with self._purges_idle:
                self._purge_runs -= 1
                self._purges_idle.notify_all()
        return ran

    # ---- internals -----------------------------------------------------------------------------
    def _loop(self) -> None:
        lower_this_thread(self._nice)  # and the ffmpeg and model threads each step starts
        # Steps and purge batches take turns when both are waiting: a long pipeline backlog does
        # not starve a purge, and a purge of thousands of assets does not stall the pipeline.
        purge_turn = False
        while not self._stop.is_set():
            job: Job | None = None
            purge: PurgeJob | None = None
            try:
                if purge_turn and self._purger is not None:
                    purge = self._queue.claim_purge()
                if purge is None:
                    job = self._queue.claim()
                if job is None and purge is None and self._purger is not None and not purge_turn:
                    purge = self._queue.claim_purge()
            except Exception:
                log.exception("claiming a job failed")
            if purge is not None:
                self._execute_purge(purge)
                purge_turn = False
            elif job is not None:
                self._execute(job)
                purge_turn = True
            else:
                self._wakeup.wait(self._poll)
                self._wakeup.clear()

    def _execute_purge(self, job: PurgeJob) -> None:
        assert self._purger is not None
        try:
            finished = self._purger(job.tenant_id, job.index_id)
        except Exception as e:
            if self._stop.is_set():
                return  # shutting down: the row stays running and the next start resumes it
            log.warning("index purge batch failed", extra={"index_id": job.index_id}, exc_info=True)
            self._queue.purge_failed(job, repr(e), backoff_s=self._backoff)
            return
        if finished:
            self._queue.purge_done(job)
            log.info("index purge finished", extra={"index_id": job.index_id})
        else:
            self._queue.purge_progressed(job)

    def _execute(self, job: Job) -> None:
        if job.attempts > job.max_attempts:  # a step that killed the process on every try
            self._give_up(
                job, ErrorInfo(code="step_failed", message="the step crashed the worker on every attempt")
            )
            return
        try:
            self._runner.run_step(job.tenant_id, job.task_id, job.step)
        except MediaError as e:
            self._give_up(job, error_info(e))
            return
        except Exception as e:
            if self._stop.is_set():
                # Shutting down (in-flight downloads are aborted then): not the step's fault. The
                # row stays `running`; the next start requeues it.
                log.info("step interrupted by shutdown", extra={"step": job.step, "task_id": job.task_id})
                return
            log.warning(
                "step failed",
                extra={"step": job.step, "task_id": job.task_id, "attempt": job.attempts},
                exc_info=True,
            )
            if job.attempts < job.max_attempts:
                self._queue.retry(job, repr(e), backoff_s=self._backoff)
                self._wakeup.set()
            else:
                self._give_up(job, error_info(e))
            return
        if self._queue.complete(job):
            self._runner.finish_task(job.tenant_id, job.task_id)
        self._wakeup.set()

    def _give_up(self, job: Job, error: ErrorInfo) -> None:
        shared = not STEP_BY_NAME[job.step].features
        self._runner.fail_step(job.tenant_id, job.task_id, job.step, error)
        if self._queue.fail(job, f"{error.code}: {error.message}", stop_plan=shared):
            self._runner.finish_task(job.tenant_id, job.task_id)
        self._wakeup.set()

    def _reap_loop(self) -> None:
        while not self._stop.wait(5.0):
            try:
                self.reap()
            except Exception:
                log.exception("reaper failed")

    def reap(self) -> int:
        """Jobs past their deadline: retried while attempts remain, else failed with step_timeout."""
        reaped = 0
        for job in self._queue.expired():
            msg = f"the {job.step} step ran past its {job.timeout_s:.0f} s timeout"
            if job.attempts < job.max_attempts:
                self._queue.retry(job, msg, backoff_s=self._backoff)
            else:
                self._give_up(job, ErrorInfo(code="step_timeout", message=msg))
            reaped += 1
        reaped += self._queue.requeue_expired_purges()
        if reaped:
            self._wakeup.set()
        return reaped
