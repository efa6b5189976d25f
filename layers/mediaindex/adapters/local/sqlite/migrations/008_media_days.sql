-- The tenant's media time per UTC day (ports/tasks.py media_counted), kept by the task writes:
-- the media-hours quota reads one row. Days before this migration are not counted.
CREATE TABLE media_days (
    tenant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    media_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
