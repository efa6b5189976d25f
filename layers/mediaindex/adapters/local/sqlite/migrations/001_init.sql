-- Metadata store. Each entity is a JSON document (`doc`, pydantic's model_dump_json) plus the
-- columns that queries filter, order or join on. Ids are time-sortable, so `ORDER BY id DESC` is
-- newest first and an id is a stable cursor.

CREATE TABLE tenants (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id        TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    key_hash  TEXT NOT NULL UNIQUE,
    doc       TEXT NOT NULL
);

CREATE TABLE indexes (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- A counter kept beside the document: asset writes change it without touching `version`.
    asset_count INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL,
    doc         TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX indexes_by_tenant ON indexes (tenant_id, id);

CREATE TABLE assets (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    index_id   TEXT NOT NULL REFERENCES indexes (id) ON DELETE CASCADE,
    status     TEXT NOT NULL,
    media_type TEXT,
    version    INTEGER NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX assets_by_tenant ON assets (tenant_id, id);
CREATE INDEX assets_by_index ON assets (index_id, id);

CREATE TABLE tasks (
    id        TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    asset_id  TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    state     TEXT NOT NULL,
    version   INTEGER NOT NULL,
    doc       TEXT NOT NULL
);
CREATE INDEX tasks_by_tenant ON tasks (tenant_id, id);
CREATE INDEX tasks_by_asset ON tasks (asset_id, id);
-- Partial index: `GET /v1/tasks/active` reads only the few live tasks, not the whole history.
CREATE INDEX tasks_active ON tasks (tenant_id, id) WHERE state IN ('queued', 'processing');

CREATE TABLE derivatives (
    asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    idx      INTEGER NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (asset_id, kind, idx)
);

CREATE TABLE segments (
    id       TEXT PRIMARY KEY,
    asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    start    REAL NOT NULL,
    doc      TEXT NOT NULL
);
CREATE INDEX segments_by_asset ON segments (asset_id, start, id);

CREATE TABLE idempotency (
    tenant_id  TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at REAL NOT NULL, -- unix seconds
    doc        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_by_expiry ON idempotency (expires_at);
