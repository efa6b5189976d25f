-- The local executor's durable work queue: one row per (task, step). A restart finds every row
-- that was queued or running and resumes it; the UNIQUE pair makes starting a task idempotent.
CREATE TABLE task_plans (
    task_id    TEXT PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    steps      TEXT NOT NULL, -- JSON list of step names, in spec order
    finished   INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    task_id      TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    step         TEXT NOT NULL,
    state        TEXT NOT NULL, -- queued | running | done | failed | cancelled
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    timeout_s    REAL NOT NULL,
    run_after    REAL NOT NULL,
    lease_until  REAL,
    last_error   TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    UNIQUE (task_id, step)
);
CREATE INDEX jobs_ready ON jobs (state, run_after);
