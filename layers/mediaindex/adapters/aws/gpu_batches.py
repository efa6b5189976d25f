"""GPU steps in batches: one AWS Batch job runs the GPU steps of many tasks with its models loaded once.

A GPU step's state in the state machine does not submit a job of its own: it sends one message,
`{"tenant_id", "task_id", "step", "token"}` (the state's task token), to the GPU work queue and waits
for that token (`sqs:sendMessage.waitForTaskToken`). The batcher Lambda receives the queue's
messages in groups (its event source mapping gathers up to a count or an age, whichever comes
first), cuts them into batches of one tenant each (`plan_batches`), writes each batch's manifest to
S3 (task tokens are up to 1 KB each: a batch does not fit a job's command) and submits one job per
batch on the GPU queue, shared by tenant (the queue's fair-share scheduling keeps one tenant's
flood from starving the others; the queue itself is an SQS fair queue by tenant).

The job (`functions.batch_step.main --batch-manifest KEY`) builds one runner, so each model loads
once, and runs the items in order: each ends its own state with `SendTaskSuccess`, or with
`SendTaskFailure` when it crashed (the state's Retry then queues it again, into a later batch; bad
media is recorded by the runner and counts as done). While it works, it sends heartbeats for the
items still waiting, so a state's HeartbeatSeconds only has to cover the queue wait. A job that
dies as a whole (Spot reclaim, out of memory) fails every token of its manifest through the
Batch "job FAILED" event (`fail_batch`); a token already settled answers TaskTimedOut or
InvalidToken, which is ignored.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

MANIFEST_PREFIX = "tmp/gpu-batches/"  # under tmp/: the bucket expires it after a day
MANIFEST_VERSION = 1
MANIFEST_FLAG = "--batch-manifest"
# Errors a state sees when its GPU work failed (the state's Retry and Catch match States.ALL).
ERROR_CRASHED = "GpuStepCrashed"
ERROR_JOB_FAILED = "GpuBatchJobFailed"
# Step Functions' answers for a token whose state is no longer waiting: already settled (a success
# after a heartbeat timeout), its execution stopped (a cancel) or gone. Nothing to do then.
_SETTLED = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}
# SendTaskFailure's limits: error 256 characters, cause 32768.
_MAX_CAUSE = 4000
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class GpuWork:
    """One GPU step of one task, waiting on its token."""

    tenant_id: str
    task_id: str
    step: str
    token: str


def parse_work(body: str, steps: Iterable[str]) -> GpuWork | None:
    """The work a queue message asks for; None for a body that is not one (logged and dropped by
    the caller: retrying cannot make it valid)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    values = [data.get(k) for k in ("tenant_id", "task_id", "step", "token")]
    if not all(isinstance(v, str) and v for v in values):
        return None
    tenant_id, task_id, step, token = (str(v) for v in values)
    if not (_NAME.match(tenant_id) and _NAME.match(task_id)) or step not in set(steps):
        return None
    return GpuWork(tenant_id, task_id, step, token)


def plan_batches(work: Sequence[GpuWork], max_items: int) -> list[list[GpuWork]]:
    """Batches of at most `max_items`, one tenant each (the Batch share), in arrival order; the
    batches of different tenants alternate, so a tenant with a backlog submits after the others'
    first batch, not before. A task's steps stay in the order they came."""
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    by_tenant: OrderedDict[str, list[GpuWork]] = OrderedDict()
    for w in work:
        by_tenant.setdefault(w.tenant_id, []).append(w)
    chunks = {t: [ws[i : i + max_items] for i in range(0, len(ws), max_items)] for t, ws in by_tenant.items()}
    out: list[list[GpuWork]] = []
    rounds = max((len(c) for c in chunks.values()), default=0)
    for r in range(rounds):
        out.extend(c[r] for c in chunks.values() if r < len(c))
    return out


def manifest_body(batch: Sequence[GpuWork]) -> bytes:
    return json.dumps({"version": MANIFEST_VERSION, "items": [asdict(w) for w in batch]}).encode()


def parse_manifest(raw: bytes, steps: Iterable[str]) -> list[GpuWork]:
    """The manifest's items; ValueError for a document this release cannot read."""
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        raise ValueError("not a GPU batch manifest of a version this release reads")
    names = set(steps)
    items = []
    for item in data.get("items") or []:
        work = parse_work(json.dumps(item), names)
        if work is None:
            raise ValueError(f"a manifest item this release cannot read: {str(item)[:200]}")
        items.append(work)
    return items


def load_manifest(s3: Any, bucket: str, key: str, steps: Iterable[str]) -> list[GpuWork]:
    """The items of the manifest at `key` (`s3` a boto3 client): the S3 client's error when it is
    missing (NoSuchKey once it expired), ValueError when this release cannot read it."""
    return parse_manifest(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), steps)


def manifest_key_of(command: Sequence[str]) -> str | None:
    """The manifest key a batch job's command names, or None (a job of another kind)."""
    for i, arg in enumerate(command[:-1]):
        if arg == MANIFEST_FLAG:
            key = command[i + 1]
            return key if key.startswith(MANIFEST_PREFIX) and ".." not in key else None
    return None


@dataclass(frozen=True)
class BatchTarget:
    """Where the batcher submits: the GPU queue, the ml job definition, and how long a job may run."""

    queue_arn: str
    job_definition_arn: str
    # Per item: the job's attempt timeout is this times the batch's items (capped by Batch's own).
    item_timeout_s: int


class GpuBatcher:
    """Writes each batch's manifest and submits its job. `s3` and `batch` are boto3 clients."""

    def __init__(self, s3: Any, batch: Any, bucket: str, target: BatchTarget, sfn: Any | None = None) -> None:
        self._s3 = s3
        self._batch = batch
        self._bucket = bucket
        self._target = target
        self._sfn = sfn

    def submit(self, batch: Sequence[GpuWork]) -> str:
        """Submits one batch (one tenant's); returns the job id. Raises on an AWS error (the
        batcher then reports the batch's messages failed, and SQS delivers them again)."""
        tenant = batch[0].tenant_id
        if any(w.tenant_id != tenant for w in batch):
            raise ValueError("a batch holds one tenant's work")
        batch_id = uuid.uuid4().hex
        key = f"{MANIFEST_PREFIX}{batch_id}.json"
        self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=manifest_body(batch), ContentType="application/json"
        )
        job = self._batch.submit_job(
            jobName=f"gpu-batch-{batch_id}",
            jobQueue=self._target.queue_arn,
            jobDefinition=self._target.job_definition_arn,
            shareIdentifier=tenant,
            containerOverrides={"command": [MANIFEST_FLAG, key]},
            # Its items run one after another; a dead job fails them all (fail_batch), and each
            # item's state retries it into a later batch: the job itself is not retried.
            retryStrategy={"attempts": 1},
            timeout={"attemptDurationSeconds": self._target.item_timeout_s * len(batch)},
        )
        if self._sfn is not None:
            # The states' heartbeat clocks start again: they now wait on the queue's capacity alone.
            # The job is submitted: a failed beat must not send its messages back (a second job).
            try:
                TokenReporter(self._sfn).heartbeat(w.token for w in batch)
            except Exception:
                log.warning("heartbeat after submit failed", exc_info=True)
        return str(job["jobId"])


class TokenReporter:
    """Ends or keeps alive the states waiting on task tokens. `sfn` is a Step Functions client."""

    def __init__(self, sfn: Any) -> None:
        self._sfn = sfn

    def succeed(self, work: GpuWork, output: dict[str, Any]) -> None:
        self._call("send_task_success", taskToken=work.token, output=json.dumps(output))

    def fail(self, token: str, error: str, cause: str) -> None:
        self._call("send_task_failure", taskToken=token, error=error[:256], cause=cause[-_MAX_CAUSE:])

    def heartbeat(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            self._call("send_task_heartbeat", taskToken=token)

    def _call(self, operation: str, **params: Any) -> None:
        try:
            getattr(self._sfn, operation)(**params)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code.rsplit(".", 1)[-1] not in _SETTLED:
                raise
            log.info("task token already settled", extra={"operation": operation, "code": code})


class Heartbeats:
    """Sends heartbeats for the tokens still waiting, every `interval_s`, on a daemon thread."""

    def __init__(self, reporter: TokenReporter, interval_s: float) -> None:
        self._reporter = reporter
        self._interval_s = interval_s
        self._waiting: dict[str, None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, tokens: Iterable[str]) -> None:
        with self._lock:
            self._waiting.update(dict.fromkeys(tokens))

    def done(self, token: str) -> None:
        with self._lock:
            self._waiting.pop(token, None)

    def beat(self) -> None:
        with self._lock:
            tokens = list(self._waiting)
        try:
            self._reporter.heartbeat(tokens)
        except Exception:  # a missed beat is retried next interval; the work goes on
            log.warning("heartbeat failed", exc_info=True)

    def __enter__(self) -> Heartbeats:
        self._thread = threading.Thread(target=self._loop, name="mi-gpu-heartbeats", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()


def run_batch(
    items: Sequence[GpuWork],
    run_item: Callable[[GpuWork], bool],
    reporter: TokenReporter,
    *,
    heartbeat_s: float = 60.0,
) -> dict[str, int]:
    """Runs the batch's items in order with `run_item` (True: ran, False: nothing to do; bad media
    is handled inside it), settling each item's token as it ends. An item that raises is failed
    alone; the others go on. Returns counts by outcome."""
    counts = {"completed": 0, "crashed": 0}
    with Heartbeats(reporter, heartbeat_s) as beats:
        beats.track(w.token for w in items)
        for work in items:
            try:
                ran = run_item(work)
            except Exception as e:  # one item's crash is that item's alone
                log.exception("GPU step crashed", extra={"task_id": work.task_id, "step": work.step})
                counts["crashed"] += 1
                # The cause reaches the asset's error message: the type only, the rest is in the log.
                cause = f"{work.step} crashed ({type(e).__name__}); the batch job's log has the details"
                reporter.fail(work.token, ERROR_CRASHED, cause)
            else:
                counts["completed"] += 1
                reporter.succeed(work, {"status": "completed", "ran": ran})
            beats.done(work.token)
    return counts


def fail_batch(items: Sequence[GpuWork], reporter: TokenReporter, reason: str) -> int:
    """Fails every token of a job that ended without settling them; returns how many were tried."""
    for work in items:
        reporter.fail(work.token, ERROR_JOB_FAILED, reason or "the GPU batch job failed")
    return len(items)
