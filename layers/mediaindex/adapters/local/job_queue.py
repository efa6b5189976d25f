"""Durable job rows in SQLite for the local executor.

A task's plan (its steps) is stored once; a step's job row is inserted when every step it needs
(within the plan) has ended, so dependencies survive restarts. Workers claim a job with a lease;
a job whose lease ran out (a hung or killed worker) goes back to the queue or fails for good.
Completions carry the attempt number they ran as, so a late finisher cannot overwrite a retry.

Index purges are jobs too (table `purge_jobs`, one row per index being deleted): claimed one
batch at a time and requeued after each, deleted once the index is gone, resumed after a restart."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, replace

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.ids import new_id
from mediaindex.pipeline.spec import STEP_BY_NAME, STEPS, StepSpec

TERMINAL = ("done", "failed", "cancelled")
# A job with its task's tenant (kept on the plan), as Job's fields are ordered.
_SELECT_JOBS = (
    "SELECT jobs.id, task_plans.tenant_id, jobs.task_id, jobs.step, jobs.attempts, jobs.max_attempts,"
    " jobs.timeout_s FROM jobs JOIN task_plans ON task_plans.task_id = jobs.task_id"
)


def _after(name: str) -> int:
    """How many steps wait, one after another, on step `name`."""
    return max((1 + _after(s.name) for s in STEPS if name in s.needs), default=0)


def _before(name: str) -> int:
    """How many steps `name` waits on, one after another."""
    return max((1 + _before(n) for n in STEP_BY_NAME[name].needs), default=0)


# Jobs are claimed task by task (oldest plan first) and, within a task, the critical path first: the
# steps on the longest chain (fetch, probe, transcription, embedding) before the leaves beside it
# (proxy, preview), then in the registry's order, never by the random suffix of the job id.
STEP_RANK = {
    s.name: rank
    for rank, s in enumerate(
        sorted(STEPS, key=lambda s: (-(_before(s.name) + _after(s.name)), STEPS.index(s)))
    )
}
_BY_PRIORITY = "CASE jobs.step " + " ".join(f"WHEN '{n}' THEN {r}" for n, r in STEP_RANK.items()) + " END"


_TENANT_RUNNING = (
    "(SELECT COUNT(*) FROM jobs AS r JOIN task_plans AS rp ON rp.task_id = r.task_id"
    " WHERE r.state = 'running' AND rp.tenant_id IS task_plans.tenant_id)"
)


def _job(row: tuple[object, ...]) -> Job:
    return Job(
        id=str(row[0]),
        tenant_id=str(row[1] or ""),
        task_id=str(row[2]),
        step=str(row[3]),
        attempts=int(str(row[4])),
        max_attempts=int(str(row[5])),
        timeout_s=float(str(row[6])),
    )


@dataclass(frozen=True)
class PurgeJob:
    """One claim of an index purge: it runs one batch of the index's assets under `claim`."""

    tenant_id: str
    index_id: str
    claim: int
    failures: int


# A purge batch that outlives this lease (a hung or killed worker) goes back to the queue.
PURGE_LEASE_S = 600.0
PURGE_MAX_BACKOFF_S = 300.0


@dataclass(frozen=True)
class Job:
    id: str
    tenant_id: str
    task_id: str
    step: str
    attempts: int
    max_attempts: int
    timeout_s: float


class JobQueue:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._now = time.time

    def enqueue_plan(
        self, tenant_id: str, task_id: str, steps: list[StepSpec], *, max_attempts: int | None = None
    ) -> None:
        names = [s.name for s in steps]
        now = self._now()
        with self._db.transaction() as tx:
            cur = tx.execute(
                "INSERT OR IGNORE INTO task_plans (tenant_id, task_id, steps, created_at)"
                " VALUES (?, ?, ?, ?)",
                (tenant_id, task_id, json.dumps(names), now),
            )
            if cur.rowcount == 0:
                return  # already started: starting twice runs once
            self._insert_ready(tx, task_id, names, {}, now, max_attempts)

    def _insert_ready(
        self,
        tx: sqlite3.Connection,
        task_id: str,
        plan: list[str],
        states: dict[str, str],
        now: float,
        max_attempts: int | None,
    ) -> None:
        for name in plan:
            if name in states:
                continue
            spec = STEP_BY_NAME[name]
            needs = [n for n in spec.needs if n in plan]
            if all(states.get(n) in TERMINAL for n in needs):
                tx.execute(
                    "INSERT OR IGNORE INTO jobs (id, task_id, step, state, attempts, max_attempts, timeout_s,"
                    " run_after, created_at, updated_at) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)",
                    (
                        new_id("job"),
                        task_id,
                        name,
                        max_attempts or spec.max_attempts,
                        spec.timeout_s,
                        now,
                        now,
                        now,
                    ),
                )

    def claim(self) -> Job | None:
        now = self._now()
        # Idle workers poll: look without the write lock first, so an idle server does not take
        # SQLite's one writer slot several times a second away from API writes.
        ready = (
            self._db.connection()
            .execute("SELECT 1 FROM jobs WHERE state = 'queued' AND run_after <= ? LIMIT 1", (now,))
            .fetchone()
        )
        if ready is None:
            return None
        with self._db.transaction() as tx:
            # Fair across tenants: the tenant with the fewest jobs running goes first, so one
            # tenant's thousand queued assets delay another's upload by at most one job per worker.
            # Within a tenant, its oldest task first, and in a task the critical path first.
            row = tx.execute(
                _SELECT_JOBS + " WHERE state = 'queued' AND run_after <= ?"
                f" ORDER BY {_TENANT_RUNNING}, task_plans.created_at, {_BY_PRIORITY}, jobs.id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            job = _job(row)
            attempts = job.attempts + 1
            tx.execute(
                "UPDATE jobs SET state = 'running', attempts = ?, lease_until = ?, updated_at = ?"
                " WHERE id = ?",
                (attempts, now + job.timeout_s, now, job.id),
            )
            return replace(job, attempts=attempts)

    def _end(self, job: Job, state: str, error: str | None, *, stop_plan: bool) -> bool:
        """Ends the job and queues what its end unblocks. Returns True when the whole plan ended."""
        now = self._now()
        with self._db.transaction() as tx:
            cur = tx.execute(
                "UPDATE jobs SET state = ?, last_error = ?, lease_until = NULL, updated_at = ?"
                " WHERE id = ? AND state = 'running' AND attempts = ?",
                (state, error, now, job.id, job.attempts),
            )
            if cur.rowcount == 0:
                return False  # reaped, cancelled or deleted meanwhile
            return self._advance(tx, job.task_id, now, stop_plan=stop_plan)

    def _advance(self, tx: sqlite3.Connection, task_id: str, now: float, *, stop_plan: bool) -> bool:
        plan_row = tx.execute(
            "SELECT steps, finished FROM task_plans WHERE task_id = ?", (task_id,)
        ).fetchone()
        if plan_row is None or plan_row[1]:
            return False
        plan: list[str] = json.loads(plan_row[0])
        states = dict(tx.execute("SELECT step, state FROM jobs WHERE task_id = ?", (task_id,)).fetchall())
        if stop_plan:
            # A shared step failed for good: nothing after it can run.
            tx.execute(
                "UPDATE jobs SET state = 'cancelled', updated_at = ? WHERE task_id = ? AND state = 'queued'",
                (now, task_id),
            )
            states = {**{n: "cancelled" for n in plan}, **{k: v for k, v in states.items() if v in TERMINAL}}
        else:
            self._insert_ready(tx, task_id, plan, states, now, None)
            states = dict(tx.execute("SELECT step, state FROM jobs WHERE task_id = ?", (task_id,)).fetchall())
        finished = all(states.get(n) in TERMINAL for n in plan) or (
            stop_plan and not any(v in ("queued", "running") for v in states.values())
        )
        if finished:
            tx.execute("UPDATE task_plans SET finished = 1 WHERE task_id = ?", (task_id,))
        return bool(finished)

    def complete(self, job: Job) -> bool:
        return self._end(job, "done", None, stop_plan=False)

    def fail(self, job: Job, error: str, *, stop_plan: bool = False) -> bool:
        return self._end(job, "failed", error[:2000], stop_plan=stop_plan)

    def retry(self, job: Job, error: str, *, backoff_s: float) -> bool:
        """Puts the job back with exponential backoff; False when it was no longer this attempt's."""
        now = self._now()
        with self._db.transaction() as tx:
            cur = tx.execute(
                "UPDATE jobs SET state = 'queued', last_error = ?, lease_until = NULL, run_after = ?,"
                " updated_at = ? WHERE id = ? AND state = 'running' AND attempts = ?",
                (error[:2000], now + backoff_s * 2 ** (job.attempts - 1), now, job.id, job.attempts),
            )
            return cur.rowcount == 1

    def cancel_task(self, task_id: str) -> None:
        now = self._now()
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated_at = ?"
                " WHERE task_id = ? AND state IN ('queued', 'running')",
                (now, task_id),
            )
            tx.execute("UPDATE task_plans SET finished = 1 WHERE task_id = ?", (task_id,))

    def is_cancelled(self, job: Job) -> bool:
        row = self._db.connection().execute("SELECT state FROM jobs WHERE id = ?", (job.id,)).fetchone()
        return row is None or row[0] == "cancelled"

    def expired(self) -> list[Job]:
        """Running jobs past their lease: their worker hung or died."""
        rows = (
            self._db.connection()
            .execute(_SELECT_JOBS + " WHERE state = 'running' AND lease_until < ?", (self._now(),))
            .fetchall()
        )
        return [_job(r) for r in rows]

    def recover_after_restart(self) -> int:
        """At start no worker runs: every `running` row belongs to a dead process. Requeue them now
        rather than waiting out their leases (the attempt they used still counts)."""
        now = self._now()
        with self._db.transaction() as tx:
            cur = tx.execute(
                "UPDATE jobs SET state = 'queued', lease_until = NULL, run_after = ?, updated_at = ?"
                " WHERE state = 'running'",
                (now, now),
            )
            return int(cur.rowcount) + self._recover_purges(tx, now)

    # ---- index purges ---------------------------------------------------------------------------
    def enqueue_purge(self, tenant_id: str, index_id: str) -> None:
        """Records that the index must be purged (once: a second request for it changes nothing)."""
        now = self._now()
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO purge_jobs (tenant_id, index_id, state, run_after, created_at,"
                " updated_at) VALUES (?, ?, 'queued', ?, ?, ?)",
                (tenant_id, index_id, now, now, now),
            )

    def claim_purge(self) -> PurgeJob | None:
        now = self._now()
        ready = (
            self._db.connection()
            .execute("SELECT 1 FROM purge_jobs WHERE state = 'queued' AND run_after <= ? LIMIT 1", (now,))
            .fetchone()
        )
        if ready is None:
            return None
        with self._db.transaction() as tx:
            row = tx.execute(
                "SELECT tenant_id, index_id, claims, failures FROM purge_jobs"
                " WHERE state = 'queued' AND run_after <= ? ORDER BY run_after LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            claim = int(row[2]) + 1
            tx.execute(
                "UPDATE purge_jobs SET state = 'running', claims = ?, lease_until = ?, updated_at = ?"
                " WHERE tenant_id = ? AND index_id = ?",
                (claim, now + PURGE_LEASE_S, now, row[0], row[1]),
            )
            return PurgeJob(tenant_id=str(row[0]), index_id=str(row[1]), claim=claim, failures=int(row[3]))

    def purge_progressed(self, job: PurgeJob) -> None:
        """A batch went through and assets remain: back to the queue for the next batch at once
        (so pipeline jobs interleave with a long purge)."""
        now = self._now()
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE purge_jobs SET state = 'queued', failures = 0, lease_until = NULL, run_after = ?,"
                " last_error = NULL, updated_at = ? WHERE tenant_id = ? AND index_id = ? AND claims = ?",
                (now, now, job.tenant_id, job.index_id, job.claim),
            )

    def purge_done(self, job: PurgeJob) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "DELETE FROM purge_jobs WHERE tenant_id = ? AND index_id = ? AND claims = ?",
                (job.tenant_id, job.index_id, job.claim),
            )

    def purge_failed(self, job: PurgeJob, error: str, *, backoff_s: float) -> None:
        """A batch failed: retried after a backoff that grows with each failure in a row (a purge
        is never given up: the index stays hidden until it is gone)."""
        now = self._now()
        delay = min(PURGE_MAX_BACKOFF_S, max(backoff_s, 0.5) * 2**job.failures)
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE purge_jobs SET state = 'queued', failures = failures + 1, lease_until = NULL,"
                " run_after = ?, last_error = ?, updated_at = ?"
                " WHERE tenant_id = ? AND index_id = ? AND claims = ?",
                (now + delay, error[:2000], now, job.tenant_id, job.index_id, job.claim),
            )

    def requeue_expired_purges(self) -> int:
        now = self._now()
        with self._db.transaction() as tx:
            cur = tx.execute(
                "UPDATE purge_jobs SET state = 'queued', lease_until = NULL, run_after = ?, updated_at = ?"
                " WHERE state = 'running' AND lease_until < ?",
                (now, now, now),
            )
            return int(cur.rowcount)

    def pending_purges(self) -> list[tuple[str, str]]:
        rows = self._db.connection().execute("SELECT tenant_id, index_id FROM purge_jobs").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def _recover_purges(self, tx: sqlite3.Connection, now: float) -> int:
        """At start: running purges belong to a dead process; and an index marked `deleting` in
        this database without a purge row (deleted by a release that purged on a thread, or a crash
        between the mark and the row) gets one."""
        cur = tx.execute(
            "UPDATE purge_jobs SET state = 'queued', lease_until = NULL, run_after = ?, updated_at = ?"
            " WHERE state = 'running'",
            (now, now),
        )
        resumed = int(cur.rowcount)
        cur = tx.execute(
            "INSERT OR IGNORE INTO purge_jobs (tenant_id, index_id, state, run_after, created_at, updated_at)"
            " SELECT tenant_id, id, 'queued', ?, ?, ? FROM indexes"
            " WHERE json_extract(doc, '$.deleting') = 1",
            (now, now, now),
        )
        return resumed + int(cur.rowcount)

    def counts(self) -> dict[str, int]:
        rows = self._db.connection().execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall()
        return {r[0]: int(r[1]) for r in rows}
