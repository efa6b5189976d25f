-- Usage counters (GET /v1/usage, the stored-bytes quota): per tenant and index, one row per
-- counter (names: ports/assets.py). Asset and derivative writes change them in their own
-- transaction; deleting an index deletes its counters. `usage_tenants` lists the tenants whose
-- counters are whole: rows an earlier release wrote are counted once, from a full read, by the
-- first usage read after this migration (adapters/local/sqlite/usage.py). New tables only: the
-- metadata tables the previous release wrote are left as they are.
CREATE TABLE usage_counters (
    tenant_id TEXT NOT NULL,
    index_id  TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, index_id, name)
);

CREATE TABLE usage_tenants (
    tenant_id TEXT PRIMARY KEY
);
