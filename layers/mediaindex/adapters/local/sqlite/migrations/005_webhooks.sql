-- Webhooks and their deliveries. A delivery row is also the local runtime's delivery queue: the
-- delivery loop attempts the `pending` rows whose `next_attempt_at` (unix seconds) has come, so
-- a restart (or a kill mid-attempt) picks up where it was. The webhook's signing secret is in
-- `doc` sealed (AES-GCM, key file in the data dir), never in the clear.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY, -- deterministic: webhook + event + subject
    tenant_id       TEXT NOT NULL,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    state           TEXT NOT NULL, -- pending | succeeded | failed
    next_attempt_at REAL,
    created_at      REAL NOT NULL,
    doc             TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at);
