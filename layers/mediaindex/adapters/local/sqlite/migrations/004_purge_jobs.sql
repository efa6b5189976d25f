-- Index purges as durable jobs of the local executor: one row per index being deleted. A worker
-- claims it for one batch of assets, then puts it back (or deletes it once the index is gone), so
-- a crash or kill part-way leaves a row that the next start resumes. `claims` counts the claims:
-- an update names the claim it ran under, so a late finisher cannot touch a newer claim.
CREATE TABLE purge_jobs (
    tenant_id   TEXT NOT NULL,
    index_id    TEXT NOT NULL,
    state       TEXT NOT NULL, -- queued | running
    claims      INTEGER NOT NULL DEFAULT 0,
    failures    INTEGER NOT NULL DEFAULT 0, -- failed batches in a row
    run_after   REAL NOT NULL,
    lease_until REAL,
    last_error  TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (tenant_id, index_id)
);
CREATE INDEX purge_jobs_ready ON purge_jobs (state, run_after);
