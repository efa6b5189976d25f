-- Quotas an admin set for a tenant (PUT /v1/quotas): one JSON document per tenant. Unset quotas
-- come from the operator's defaults. (Keys are listed per tenant by a scan of `api_keys`: a
-- deployment has few keys, and an index would change a table the previous release wrote.)
CREATE TABLE tenant_quotas (
    tenant_id TEXT PRIMARY KEY,
    doc       TEXT NOT NULL
);
