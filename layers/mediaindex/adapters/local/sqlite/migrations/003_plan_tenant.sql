-- A task's plan names its tenant, so the worker that runs a step reads the task and its asset
-- through tenant-scoped repositories like every other caller. Plans written before this
-- migration take the tenant from their task.
ALTER TABLE task_plans ADD COLUMN tenant_id TEXT;
UPDATE task_plans SET tenant_id = (SELECT tasks.tenant_id FROM tasks WHERE tasks.id = task_plans.task_id);
