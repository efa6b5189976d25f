"""Per-asset AWS budget: one asset through the AWS runtime under moto with every botocore call
recorded, counted as AWS bills it, and the scale model of bench/aws_prices.py on top.

    python -m bench.aws_budget      # clips of 20 s and 60 s: the table (stderr), one JSON line, docs/scale.md
    python -m bench.aws_budget 5    # one clip of about 5 s: the table and the JSON line only

How one asset runs: the API app (TestClient) creates the asset and the client PUTs the original to
the signed URL, whose stand-in stores it and runs the upload Lambda's code (tests/aws_runtime.py);
that starts the Step Functions execution (moto accepts it and runs nothing). The deployed definition
(adapters/aws/state_machine.py) then runs in aws-local-stepfunctions (tests/asl/run.mjs, stubbed
tasks) on that execution's own input: it gives the states entered (the transitions billed) and the
Task calls in order, which are replayed here in-process with the code they name on AWS: Batch jobs
through the StepRunner the Batch container builds (build_aws_runner), Lambda tasks through the
pipeline-events handler. Then one GET of the asset and one search, as a client would.

Counting (`dynamo_capacity`, `s3_request`): DynamoDB units from item sizes (DynamoDB's size rules:
names plus values), 1 WRU per KB written (the larger of the item before and after), 1 RRU per 4 KB
strongly consistent read, half for eventually consistent, transactions double, every GSI the item is
in written again (projection ALL). Items a request does not carry (UpdateItem, DeleteItem) are read
before and after the call through a client nobody records. Query units come from the items
returned: a filter's or projection's dropped bytes are not seen, so reads are a lower bound."""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import aws_prices as prices

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scale.md"
BEGIN_MARKER = "<!-- BEGIN GENERATED: aws_budget -->"
END_MARKER = "<!-- END GENERATED: aws_budget -->"
ASL_RUN = ROOT / "tests" / "asl" / "run.mjs"
REFERENCE_S = 600.0  # the reference asset: 10 min of 1080p, ~120 segments
RATES_PER_MIN = (1, 100, 10_000)
API_REQUESTS = 3  # POST /v1/assets, one GET /v1/assets/{id}, one POST /v1/search (each an API Lambda)
KB, READ_KB = 1024, 4096

Item = dict[str, Any]
Lookup = Callable[[str, Item], Item | None]  # (table, key) -> the item now, read unrecorded


# ---- DynamoDB ----------------------------------------------------------------------------------
def attribute_size(value: Item) -> int:
    """Bytes of one typed attribute value, by DynamoDB's item size rules."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "B":
        return len(v)
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").lstrip("0") or "0"
        return 1 + math.ceil(len(digits) / 2)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "BS":
        return sum(len(x) for x in v)
    if kind == "NS":
        return sum(attribute_size({"N": x}) for x in v)
    if kind == "L":
        return 3 + sum(1 + attribute_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(x) for k, x in v.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Item | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


@dataclass
class Call:
    """One recorded botocore call. `before`/`after`: for each DynamoDB write of the request, in
    request order, the item before and after the call (None: absent or not looked up)."""

    service: str  # botocore's hyphenized service id: dynamodb, s3, sfn, ...
    operation: str
    params: Item
    response: Item = field(default_factory=dict)
    status: int = 200
    phase: str = ""
    sent_bytes: int = 0
    before: list[Item | None] = field(default_factory=list)
    after: list[Item | None] = field(default_factory=list)


@dataclass
class Capacity:
    wru: float = 0.0
    rru: float = 0.0
    # WRU by partition: "table/<pk value>" or "<gsi>/<gsi pk value>"
    partitions: dict[str, float] = field(default_factory=dict)


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_KB))
    return float(units) if consistent else units / 2


def dynamo_writes(call: Call) -> list[tuple[str, Item | None]]:
    """(kind, item carried by the request) of each write a DynamoDB request makes, in order."""
    p = call.params
    op = call.operation
    if op == "PutItem":
        return [("Put", p["Item"])]
    if op in ("UpdateItem", "DeleteItem"):
        return [(op[:-4], None)]
    if op == "BatchWriteItem":
        return [
            ("Put", r["PutRequest"]["Item"]) if "PutRequest" in r else ("Delete", None)
            for requests in p["RequestItems"].values()
            for r in requests
        ]
    if op == "TransactWriteItems":
        return [(kind, body.get("Item")) for t in p["TransactItems"] for kind, body in t.items()]
    return []


def write_keys(call: Call, key_attrs: tuple[str, str]) -> list[tuple[str, Item]]:
    """(table, key) of each write, in the order of `dynamo_writes` (for looking items up)."""
    p = call.params

    def key_of(body: Item) -> Item:
        return body.get("Key") or {a: body["Item"][a] for a in key_attrs}

    op = call.operation
    if op in ("PutItem", "UpdateItem", "DeleteItem"):
        return [(p["TableName"], key_of(p))]
    if op == "BatchWriteItem":
        return [
            (table, key_of(r.get("PutRequest") or r["DeleteRequest"]))
            for table, requests in p["RequestItems"].items()
            for r in requests
        ]
    if op == "TransactWriteItems":
        return [(body["TableName"], key_of(body)) for t in p["TransactItems"] for body in t.values()]
    return []


def dynamo_capacity(call: Call, gsi_keys: dict[str, str], pk: str = "pk") -> Capacity:
    """The units `call` consumes. `gsi_keys`: GSI name -> its partition key attribute."""
    cap = Capacity()
    p, r, op = call.params, call.response, call.operation
    if op == "GetItem":
        cap.rru = read_units(item_size(r.get("Item")), bool(p.get("ConsistentRead")))
    elif op in ("Query", "Scan"):
        consistent = bool(p.get("ConsistentRead")) and "IndexName" not in p
        cap.rru = read_units(sum(item_size(i) for i in r.get("Items", [])), consistent)
    elif op == "BatchGetItem":
        cap.rru = sum(
            read_units(item_size(i), bool(p["RequestItems"][t].get("ConsistentRead")))
            for t, items in r.get("Responses", {}).items()
            for i in items
        )
    elif op == "TransactGetItems":
        cap.rru = sum(2 * read_units(item_size(i.get("Item")), True) for i in r.get("Responses", []))
    writes = dynamo_writes(call)
    factor = 2 if op == "TransactWriteItems" else 1
    for i, (kind, carried) in enumerate(writes):
        before = call.before[i] if i < len(call.before) else None
        after = carried if kind == "Put" else (call.after[i] if i < len(call.after) else None)
        units = factor * write_units(max(item_size(before), item_size(after)))
        if kind == "ConditionCheck":
            units = factor * write_units(item_size(before))
        cap.wru += units
        shown = after or before or {}
        if pk in shown:
            _add(cap.partitions, "table/" + _scalar(shown[pk]), units)
        if kind == "ConditionCheck":
            continue
        for gsi, attr in gsi_keys.items():
            for version in {_scalar(x[attr]) for x in (before, after) if x and attr in x}:
                cap.wru += units  # the index rewrites (or drops) its copy of the item
                _add(cap.partitions, f"{gsi}/{version}", units)
    return cap


def _scalar(value: Item) -> str:
    return str(next(iter(value.values())))


def _add(tally: dict[str, float], key: str, units: float) -> None:
    tally[key] = tally.get(key, 0.0) + units


# ---- S3 ----------------------------------------------------------------------------------------
S3_KINDS: dict[str, str] = {
    "PutObject": "PUT",
    "CopyObject": "PUT",
    "CreateMultipartUpload": "PUT",
    "CompleteMultipartUpload": "PUT",
    "UploadPart": "PUT_PART",
    "GetObject": "GET",
    "HeadObject": "HEAD",
    "ListObjectsV2": "LIST",
    "ListObjects": "LIST",
    "ListParts": "LIST",
    "DeleteObject": "DELETE",
    "DeleteObjects": "DELETE",
    "AbortMultipartUpload": "DELETE",
}
PUT_CLASS = frozenset({"PUT", "PUT_PART", "LIST"})
GET_CLASS = frozenset({"GET", "HEAD"})


def s3_request(call: Call) -> tuple[str, int]:
    """(kind, bytes moved) of an S3 call: kinds as S3 bills them (PUT_PART: a multipart part, billed
    as a PUT; DELETE: free); OTHER for what the pipeline should not call (priced as a GET)."""
    kind = S3_KINDS.get(call.operation, "OTHER")
    if kind == "GET":
        return kind, int(call.response.get("ContentLength") or 0)
    return kind, call.sent_bytes if kind in ("PUT", "PUT_PART") else 0


def body_size(body: Any) -> int:
    if body is None:
        return 0
    if isinstance(body, bytes | bytearray):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    if hasattr(body, "__len__"):  # s3transfer's chunk readers
        return len(body)
    pos = body.tell()
    body.seek(0, 2)
    end = body.tell()
    body.seek(pos)
    return int(end - pos)


# ---- recording ---------------------------------------------------------------------------------
class Recorder:
    """Records every call of the clients it is attached to (botocore events), tagged with the phase
    set by `phase()`. DynamoDB writes without the item in the request are looked up with `lookup`."""

    def __init__(self, lookup: Lookup, key_attrs: tuple[str, str] = ("pk", "sk")) -> None:
        self.calls: list[Call] = []
        self.current = ""
        self._lookup = lookup
        self._key_attrs = key_attrs
        self._attached: list[Any] = []
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build", self._before, unique_id="aws-budget-before")
        client.meta.events.register("after-call", self._after, unique_id="aws-budget-after")
        self._attached.append(client)

    def detach(self) -> None:
        for client in self._attached:
            client.meta.events.unregister("before-parameter-build", unique_id="aws-budget-before")
            client.meta.events.unregister("after-call", unique_id="aws-budget-after")
        self._attached.clear()

    def is_attached(self, client: Any) -> bool:
        return any(c is client for c in self._attached)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        previous, self.current = self.current, name
        try:
            yield
        finally:
            self.current = previous

    def _before(self, params: Item, model: Any, context: Item, **_: Any) -> None:
        service = model.service_model.service_id.hyphenize()
        call = Call(service, model.name, dict(params), phase=self.current)
        if service == "s3":
            call.sent_bytes = int(params.get("ContentLength") or body_size(params.get("Body")))
        if service == "dynamodb":
            call.before = [self._lookup(t, k) for t, k in write_keys(call, self._key_attrs)]
        context["aws_budget_call"] = call

    def _after(self, http_response: Any, parsed: Item, model: Any, context: Item, **_: Any) -> None:
        call: Call | None = context.get("aws_budget_call")
        if call is None:
            return
        call.status = int(http_response.status_code)
        call.response = {k: v for k, v in parsed.items() if k != "Body"}  # the stream stays unread
        if call.service == "dynamodb":
            call.after = [self._lookup(t, k) for t, k in write_keys(call, self._key_attrs)]
        with self._lock:
            self.calls.append(call)


# ---- totals ------------------------------------------------------------------------------------
@dataclass
class Totals:
    wru: float = 0.0
    rru: float = 0.0
    dynamodb_calls: Counter[str] = field(default_factory=Counter)
    s3_requests: Counter[str] = field(default_factory=Counter)
    s3_bytes: Counter[str] = field(default_factory=Counter)
    other_calls: Counter[str] = field(default_factory=Counter)
    partitions: dict[str, float] = field(default_factory=dict)


def totals(calls: Iterable[Call], gsi_keys: dict[str, str]) -> Totals:
    t = Totals()
    for call in calls:
        if call.service == "dynamodb":
            cap = dynamo_capacity(call, gsi_keys)
            t.wru += cap.wru
            t.rru += cap.rru
            t.dynamodb_calls[call.operation] += 1
            for k, v in cap.partitions.items():
                _add(t.partitions, k, v)
        elif call.service == "s3":
            kind, moved = s3_request(call)
            t.s3_requests[kind] += 1
            t.s3_bytes[kind] += moved
        else:
            t.other_calls[f"{call.service}:{call.operation}"] += 1
    return t


def hot_partition(partitions: dict[str, float], shared: set[str]) -> tuple[str | None, float]:
    """The partition in `shared` (written by every upload, not just this one) written the most."""
    candidates = [(v, k) for k, v in partitions.items() if k in shared]
    if not candidates:
        return None, 0.0
    units, key = max(candidates)
    return key, units


# ---- one asset ---------------------------------------------------------------------------------
def state_machine_run(execution_input: Item) -> Item:
    """The deployed definition run in aws-local-stepfunctions with stubbed tasks: states entered and
    the Task calls in order. Needs node and tests/asl/node_modules (`make deps-node`)."""
    from tests.infra.test_state_machine_faithful import DEPLOYED

    node = shutil.which("node")
    if node is None or not (ASL_RUN.parent / "node_modules" / "aws-local-stepfunctions").is_dir():
        raise RuntimeError("node and tests/asl/node_modules are needed (make deps-node)")
    request = {
        "definition": DEPLOYED,
        "runs": [{"input": execution_input}],
        "stub": True,
        "retry_interval_ms": 0,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(request, f)
        f.flush()
        proc = subprocess.run([node, str(ASL_RUN), f.name], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"run.mjs failed: {proc.stderr[-2000:]}")
    result: Item = json.loads(proc.stdout)["results"][0]
    if result["status"] != "SUCCEEDED":
        raise RuntimeError(f"the execution did not succeed: {result.get('error')}")
    return result


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (ffmpeg)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(seconds: float, work: Path) -> Item:
    """One asset of about `seconds` through the AWS runtime; returns what it cost (see module doc)."""
    import boto3
    from starlette.testclient import TestClient

    from functions.pipeline_events import handler as events
    from mediaindex import samples
    from mediaindex.adapters.aws.clients import make_client
    from mediaindex.adapters.aws.dynamo import schema
    from mediaindex.bootstrap.app import build_app
    from mediaindex.bootstrap.aws import build_aws_runner
    from mediaindex.pipeline.spec import STEP_BY_NAME
    from tests.apiclient import Api
    from tests.aws_runtime import REGION, build_aws_test_services

    text = "The ferry leaves at seven and returns at noon, past the lighthouse and the fish market. "
    clip = samples.talking_video(
        work / "clip.mp4", text * max(1, int(seconds // 6)), size="1920x1080", min_duration_s=seconds
    )
    # One signed PUT whatever the size: the stand-in of S3's presigned endpoint delivers the upload
    # event on a whole-object PUT only. The reference adds the multipart upload's requests (`reference`).
    runtime = build_aws_test_services(work / "data", multipart_threshold_bytes=1 << 40)
    try:
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        shadow = make_client("dynamodb", region=REGION, session=session)  # unrecorded look-ups

        def lookup(table: str, key: Item) -> Item | None:
            item: Item | None = shadow.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            return item

        table = runtime.settings.table_name
        described = shadow.describe_table(TableName=table)["Table"]
        gsi_keys = {
            g["IndexName"]: next(k["AttributeName"] for k in g["KeySchema"] if k["KeyType"] == "HASH")
            for g in described.get("GlobalSecondaryIndexes", [])
        }
        assert runtime.aws_clients is not None
        clients = runtime.aws_clients
        recorder = Recorder(lookup, (schema.PK, schema.SK))
        with TestClient(build_app(runtime), base_url="http://127.0.0.1:8000") as http:
            api = Api(http, runtime.services.keys.create_key("bench")[2])
            index = api.index("budget", default_features=["proxy", "preview", "transcription", "embedding"])
            for client in clients.made.values():
                recorder.attach(client)
            try:
                with recorder.phase("api: POST /v1/assets"):
                    created = api.ok("POST", "/v1/assets", 201, json={
                        "index_id": index["id"], "name": "clip.mp4", "size_bytes": clip.stat().st_size,
                    })  # fmt: skip
                upload = created["upload"]
                with recorder.phase("client PUT + upload event"):
                    resp = api.put(upload["url"], clip.read_bytes(), upload["headers"])
                    assert resp.status_code == 200, resp.text
                execution_input = started_input(recorder.calls)
                run = state_machine_run(execution_input)
                runner = build_aws_runner(runtime.settings, clients=clients)
                load_s = _warm(runner)
                step_cpu: dict[str, float] = {}
                lambda_events = 0
                for task in run["calls"]:
                    if task["kind"] == "batch":
                        with recorder.phase(f"batch: {task['step']}"):
                            t0 = cpu_seconds()
                            runner.run_step(
                                execution_input["tenant_id"], execution_input["task_id"], task["step"]
                            )
                            step_cpu[task["step"]] = round(cpu_seconds() - t0, 2)
                    else:
                        lambda_events += 1
                        with recorder.phase(f"lambda: {task['payload']['action']}"):
                            events.configure(runner)
                            events.process(task["payload"])
                asset_id = created["asset"]["id"]
                with recorder.phase("api: GET /v1/assets/{id}"):
                    asset = api.ok("GET", f"/v1/assets/{asset_id}")
                with recorder.phase("api: POST /v1/search"):
                    api.ok(
                        "POST",
                        "/v1/search",
                        json={"index_id": index["id"], "query_text": "ferry", "limit": 5},
                    )
                require_recorded(clients.made, recorder)
            finally:
                recorder.detach()
        require_ready(asset)
        batch_steps = [t["step"] for t in run["calls"] if t["kind"] == "batch" and not t.get("queued")]
        queued_steps = [t["step"] for t in run["calls"] if t["kind"] == "batch" and t.get("queued")]
        return {
            "media_s": round(float(asset.get("duration_s") or seconds), 2),
            "clip": {"size": "1920x1080", "bytes": clip.stat().st_size},
            "upload_key": _upload_key(recorder.calls),
            "calls": recorder.calls,
            "gsi_keys": gsi_keys,
            "own_ids": (created["asset"]["id"], execution_input["task_id"]),
            "transitions": len(run["states"]),
            "batch_steps": batch_steps,
            # Steps sent to the GPU work queue: items of shared batch jobs (gpu_batches.py).
            "gpu_batched_steps": queued_steps,
            "fargate_jobs": sum(1 for s in batch_steps if STEP_BY_NAME[s].compute == "cpu"),
            "lambda": {
                "api": API_REQUESTS,
                "upload_event": 1,
                "pipeline_events": lambda_events,
                "query_encoder": 1,
            },
            "step_cpu_s": step_cpu,
            "model_load_cpu_s": load_s,
            "ml_steps": [s for s in batch_steps + queued_steps if STEP_BY_NAME[s].compute == "gpu"],
        }
    finally:
        runtime.close()


def started_input(calls: list[Call]) -> Item:
    """The input of the one execution the upload started."""
    starts = [c for c in calls if c.operation == "StartExecution"]
    if len(starts) != 1:
        raise RuntimeError(f"expected one StartExecution, saw {len(starts)}")
    execution_input: Item = json.loads(starts[0].params["input"])
    return execution_input


def require_recorded(made: dict[str, Any], recorder: Recorder) -> None:
    """A client made during the run (a service first used then) would have gone uncounted."""
    unrecorded = sorted(name for name, c in made.items() if not recorder.is_attached(c))
    if unrecorded:
        raise RuntimeError(f"clients made during the run were not recorded: {unrecorded}")


def require_ready(asset: Item) -> None:
    """A budget of a failed asset would count a path no successful upload takes."""
    if asset.get("status") != "ready":
        raise RuntimeError(f"the asset ended {asset.get('status')}: {asset.get('features')}")


def _warm(runner: Any) -> float:
    """Loads the models before the steps (a job's container loads them once): their CPU time is
    reported apart, as a fixed cost per GPU job, so the steps' own time scales with the media."""
    t0 = cpu_seconds()
    runner.models.transcriber()
    runner.models.text_encoder()
    runner.models.clip()
    return round(cpu_seconds() - t0, 2)


def _upload_key(calls: list[Call]) -> str | None:
    return next(
        (c.params["Key"] for c in calls if c.operation == "PutObject" and c.phase.startswith("client")), None
    )


# ---- report ------------------------------------------------------------------------------------
def summarize(m: Item) -> Item:
    """The measured asset as plain numbers (what the JSON line, the fit and the table use)."""
    calls: list[Call] = m["calls"]
    t = totals(calls, m["gsi_keys"])
    # Partitions keyed by neither this asset nor its task are shared with every upload of the index
    # (the index, the tenant, the index's listing in a GSI).
    shared = {k for k in t.partitions if not any(own in k for own in m["own_ids"])}
    hot_key, hot_wru = hot_partition(t.partitions, shared)
    original = m["upload_key"]
    original_gets = sum(1 for c in calls if c.operation == "GetObject" and c.params.get("Key") == original)
    steps_reading = len(
        {c.phase for c in calls if c.operation == "GetObject" and c.params.get("Key") == original}
    )
    by_phase: dict[str, Item] = {}
    for phase in dict.fromkeys(c.phase for c in calls):
        pt = totals((c for c in calls if c.phase == phase), m["gsi_keys"])
        by_phase[phase] = {
            "wru": pt.wru, "rru": pt.rru,
            "s3": dict(pt.s3_requests), "other": dict(pt.other_calls),
        }  # fmt: skip
    lam = m["lambda"]
    return {
        "media_s": m["media_s"],
        "clip": m["clip"],
        "dynamodb_wru": t.wru,
        "dynamodb_rru": t.rru,
        "dynamodb_calls": dict(t.dynamodb_calls),
        "hot_partition": hot_key,
        "hot_partition_wru": hot_wru,
        "s3_requests": dict(t.s3_requests),
        "s3_bytes": dict(t.s3_bytes),
        "s3_put_class": sum(v for k, v in t.s3_requests.items() if k in PUT_CLASS),
        "s3_get_class": sum(v for k, v in t.s3_requests.items() if k not in PUT_CLASS | {"DELETE"}),
        "original_gets": original_gets,
        "phases_reading_original": steps_reading,
        "other_calls": dict(t.other_calls),
        "sfn_start": t.other_calls.get("sfn:StartExecution", 0),
        "sfn_transitions": m["transitions"],
        "batch_submit_job": len(m["batch_steps"]),
        "gpu_batched_steps": len(m["gpu_batched_steps"]),
        "fargate_jobs": m["fargate_jobs"],
        "lambda": lam,
        "lambda_invocations": sum(lam.values()),
        "step_cpu_s": m["step_cpu_s"],
        "model_load_cpu_s": m["model_load_cpu_s"],
        "ml_steps": m["ml_steps"],
        "by_phase": by_phase,
    }


def flat(summary: Item) -> dict[str, float]:
    """The summary's numbers under dotted names (what the fit scales)."""
    out: dict[str, float] = {"media_s": summary["media_s"], "clip_bytes": summary["clip"]["bytes"]}
    for k, v in summary.items():
        if k in ("media_s", "by_phase"):
            continue
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, dict) and all(isinstance(x, int | float) for x in v.values()):
            out.update({f"{k}.{sub}": float(x) for sub, x in v.items()})
    return out


def fit(short: dict[str, float], long: dict[str, float], at_s: float) -> dict[str, Item]:
    """Per quantity: a fixed part and a part per media second from two clips, the value at `at_s`.
    A quantity that shrinks with the longer clip (noise) is taken as fixed at the longer clip's."""
    d1, d2 = short["media_s"], long["media_s"]
    out: dict[str, Item] = {}
    for name in sorted(set(short) | set(long)):
        if name == "media_s":
            continue
        a, b = short.get(name, 0.0), long.get(name, 0.0)
        per_s = max(0.0, (b - a) / (d2 - d1))
        out[name] = {
            "short": a, "long": b, "fixed": round(b - per_s * d2, 3),
            "per_media_min": round(per_s * 60, 3), "reference": round(b + per_s * (at_s - d2), 3),
        }  # fmt: skip
    return out


def multipart_upload(size: float, part_size: int) -> dict[str, float]:
    """What a multipart upload of `size` bytes adds over one PUT: the parts plus create and complete
    (S3 PUT class), and the API's POST .../upload/complete (an API request, a Lambda invocation)."""
    parts = math.ceil(size / part_size)
    return {"s3_put_class": parts + 1, "api_requests": 1, "lambda_invocations": 1, "parts": parts}


def reference_budget(fitted: dict[str, Item], media_s: float = REFERENCE_S) -> prices.Budget:
    """The reference asset's budget: the fitted values, the multipart upload, and the task times of
    bench/aws_prices.py (TASK_RTF) for Fargate and the GPU."""
    from mediaindex.pipeline.spec import STEP_BY_NAME
    from mediaindex.settings import Settings

    ref = {k: float(v["reference"]) for k, v in fitted.items()}
    mp = multipart_upload(ref["clip_bytes"], Settings().part_size_bytes)
    steps = [k.split(".", 1)[1] for k in ref if k.startswith("step_cpu_s.")]

    def work_s(compute: str) -> float:
        return sum(prices.TASK_RTF[s] * media_s for s in steps if STEP_BY_NAME[s].compute == compute)

    # CPU steps are jobs of their own, each with its start; GPU steps share batch jobs' starts
    # (priced per rate by the model), unless this definition runs them as jobs of their own.
    gpu_own_jobs = ref["batch_submit_job"] - ref["fargate_jobs"]

    return prices.Budget(
        media_s=media_s,
        dynamodb_wru=ref["dynamodb_wru"],
        dynamodb_rru=ref["dynamodb_rru"],
        hot_partition_wru=ref["hot_partition_wru"],
        s3_put_class=ref["s3_put_class"] + mp["s3_put_class"],
        s3_get_class=ref["s3_get_class"],
        s3_prefix_puts=ref["s3_put_class"] + mp["s3_put_class"],
        sfn_start=ref["sfn_start"],
        sfn_transitions=ref["sfn_transitions"],
        batch_jobs=ref["batch_submit_job"],
        fargate_jobs=ref["fargate_jobs"],
        lambda_invocations=ref["lambda_invocations"] + mp["lambda_invocations"],
        api_requests=ref["lambda.api"] + mp["api_requests"],
        fargate_s=work_s("cpu") + prices.JOB_START_S * ref["fargate_jobs"],
        gpu_work_s=work_s("gpu") + prices.JOB_START_S * gpu_own_jobs,
        gpu_items=ref.get("gpu_batched_steps", 0.0),
    )


# ---- rendering ---------------------------------------------------------------------------------
def _n(v: float) -> str:
    if math.isinf(v):
        return "never"  # a quota this asset does not use
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:,.2f}"


def render(summaries: list[Item], fitted: dict[str, Item], budget: prices.Budget, model: list[Item]) -> str:
    """The generated part of docs/scale.md (also what `make bench` prints)."""
    short, long = summaries[0], summaries[-1]
    kb = [s["clip"]["bytes"] * 8 / s["media_s"] / 1e6 for s in summaries]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} by `python -m bench.aws_budget`: generated 1080p clips of "
        f"{short['media_s']} s and {long['media_s']} s (H.264/AAC test pattern with speech, "
        f"{kb[0]:.1f} and {kb[-1]:.1f} Mbit/s), all four features, one asset each, through the AWS runtime "
        "under moto. *fixed* and *per media min* come from the two clips; *reference* is the issue's "
        f"asset ({REFERENCE_S / 60:.0f} min of 1080p) at that fit.",
        "",
        "### Per asset",
        "",
        f"| quantity | {short['media_s']} s clip | {long['media_s']} s clip "
        "| fixed | per media min | reference |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, v in sorted(fitted.items(), key=lambda kv: _row_order(kv[0])):
        if name.split(".")[0] not in LABELS or v["short"] == v["long"] == 0:
            continue
        label = LABELS[name.split(".")[0]] + (f" {name.split('.', 1)[1]}" if "." in name else "")
        lines.append(
            f"| {label} | {_n(v['short'])} | {_n(v['long'])} | {_n(v['fixed'])} | "
            f"{_n(v['per_media_min'])} | {_n(v['reference'])} |"
        )
    lam = long["lambda"]
    lines += [
        "",
        f"Lambda invocations per asset: {lam['api']} API requests (create, one status read, one search), "
        f"{lam['upload_event']} upload event, {lam['pipeline_events']} pipeline event(s), "
        f"{lam['query_encoder']} query encoder call per search. Model load before the ML steps: "
        f"{short['model_load_cpu_s']} CPU s (the process's first load; once per GPU job on AWS).",
        "",
        "ML step CPU seconds above were measured on this machine's CPUs: a proxy for the work, not GPU "
        "time. The model uses the task times of docs/deploy.md's cost table instead (the CPU steps "
        "measured here, render on a camera-like 1080p source by `bench/media_bench.py`; the GPU steps "
        "measured on an H200 by `bench/gpu_bench.py` and scaled to g5.xlarge): "
        + ", ".join(f"{s} {r} s per media s" for s, r in prices.TASK_RTF.items())
        + f", plus {prices.JOB_START_S:.0f} s per job to start (*assumed*).",
        "",
        "### Where the requests go (longer clip)",
        "",
        "| phase | WRU | RRU | S3 requests | other |",
        "|---|---:|---:|---|---|",
    ]
    for phase, p in long["by_phase"].items():
        s3 = ", ".join(f"{k} {v}" for k, v in sorted(p["s3"].items())) or "-"
        other = ", ".join(f"{k} {v}" for k, v in p["other"].items()) or "-"
        lines.append(f"| {phase} | {_n(p['wru'])} | {_n(p['rru'])} | {s3} | {other} |")
    lines += [
        "",
        "### The reference asset at scale",
        "",
        f"Reference budget: {_n(budget.dynamodb_wru)} WRU, {_n(budget.dynamodb_rru)} RRU, "
        f"{_n(budget.s3_put_class)} S3 PUT-class and {_n(budget.s3_get_class)} GET-class requests "
        f"(its multipart upload included), {_n(budget.sfn_transitions)} transitions, "
        f"{_n(budget.batch_jobs)} Batch jobs of its own ({_n(budget.fargate_jobs)} on Fargate, "
        f"{budget.fargate_s:.0f} task s), {_n(budget.gpu_items)} GPU steps in shared batch jobs "
        f"({budget.gpu_work_s:.0f} GPU s of work, plus a share of each batch's {prices.JOB_START_S:.0f} s "
        f"start: up to {prices.GPU_BATCH_MAX_ITEMS} items per batch, gathered for "
        f"{prices.GPU_BATCH_WINDOW_S:.0f} s), {_n(budget.lambda_invocations)} Lambda "
        f"invocations, {_n(budget.hot_partition_wru)} WRU on the hottest partition shared with the tenant's "
        "other uploads. Every rate below is one tenant's.",
        "",
        "| uploads/min | media h per h | quotas exceeded, in the order reached | busiest quota "
        "| GPU steps per batch job | GPU s per asset | GPU instances "
        "| $/media h on-demand | $/media h Spot |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in model:
        cost = m["usd_per_media_hour"]
        lines.append(
            f"| {_n(m['uploads_per_min'])} | {_n(m['media_hours_per_hour'])} | "
            f"{', '.join(m['exceeded']) or 'none'} | "
            f"{m['closest']} at {m['closest_utilisation']:.0%} | {_n(m['gpu_batch_fill'] or 1)} | "
            f"{_n(m['gpu_s_per_asset'])} | {m['gpu_instances']:,} | "
            f"${cost['total_on_demand']:.3f} | ${cost['total_spot']:.3f} |"
        )
    ceilings = prices.max_rate_per_min(budget)
    lines.append("")
    for m in model:
        first, hard = m["first_limit"], m["first_rate_limit"]
        lines.append(
            f"- {_n(m['uploads_per_min'])} uploads/min: "
            + (
                f"the first limit hit is {first} (reached at {_n(round(ceilings[first], 1))}/min)"
                if first
                else f"no quota is reached (the busiest, {m['closest']}, at {m['closest_utilisation']:.0%})"
            )
            + (
                f"; the first API rate quota (not an account's capacity) is {hard}, at "
                f"{_n(round(ceilings[hard], 1))}/min."
                if hard and hard != first
                else "."
            )
        )
    lines += [
        "",
        "| quota | value | reached at uploads/min | source |",
        "|---|---:|---:|---|",
    ]
    for k in sorted(ceilings, key=lambda k: ceilings[k]):
        q = prices.QUOTAS[k]
        mark = " (*assumed*)" if q.assumed else ""
        lines.append(f"| {k} | {_n(q.per_s)} {q.unit}{mark} | {_n(round(ceilings[k], 1))} | {q.source} |")
    breakdown = model[0]["usd_per_media_hour"]
    lines += [
        "",
        "Cost per media hour at 1 upload/min, by item: "
        + ", ".join(f"{k} ${v:.4f}" for k, v in breakdown.items() if not k.startswith("total"))
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _row_order(name: str) -> tuple[int, str]:
    order = list(LABELS)
    head = name.split(".")[0]
    return (order.index(head) if head in order else len(order), name)


# The per-asset rows, in this order (the other numbers go to the JSON line only).
LABELS = {
    "dynamodb_wru": "DynamoDB WRU",
    "dynamodb_rru": "DynamoDB RRU",
    "dynamodb_calls": "DynamoDB calls",
    "hot_partition_wru": "WRU on the hottest shared partition",
    "s3_put_class": "S3 PUT-class requests",
    "s3_get_class": "S3 GET-class requests",
    "s3_requests": "S3 requests",
    "s3_bytes": "S3 bytes",
    "original_gets": "S3 GETs of the original",
    "phases_reading_original": "steps reading the original",
    "sfn_start": "StartExecution",
    "sfn_transitions": "state transitions",
    "batch_submit_job": "Batch SubmitJob (jobs of its own)",
    "gpu_batched_steps": "GPU steps in shared batch jobs",
    "fargate_jobs": "Fargate jobs",
    "lambda_invocations": "Lambda invocations",
    "step_cpu_s": "CPU s (here) of step",
}


def update_document(doc_text: str, generated: str) -> str:
    """`doc_text` with the part between the markers replaced (appended when it has none)."""
    block = f"{BEGIN_MARKER}\n\n{generated}\n{END_MARKER}"
    begin, end = doc_text.find(BEGIN_MARKER), doc_text.find(END_MARKER)
    if begin < 0 and end < 0:
        return doc_text.rstrip("\n") + "\n\n" + block + "\n"
    if begin < 0 or end < begin or doc_text.count(BEGIN_MARKER) > 1 or doc_text.count(END_MARKER) > 1:
        raise ValueError(f"{DOC.name} needs {BEGIN_MARKER} before {END_MARKER}, each once")
    return doc_text[:begin] + block + doc_text[end + len(END_MARKER) :]


def run(durations: list[float]) -> tuple[str, Item]:
    summaries = []
    for seconds in durations:
        with tempfile.TemporaryDirectory() as tmp:
            summaries.append(summarize(measure(seconds, Path(tmp))))
    short, long = flat(summaries[0]), flat(summaries[-1])
    if len(summaries) == 1:  # one clip: nothing scales, the reference is the clip as measured
        fitted = {
            k: {"short": v, "long": v, "fixed": v, "per_media_min": 0.0, "reference": v}
            for k, v in long.items()
        }
    else:
        fitted = fit(short, long, REFERENCE_S)
    budget = reference_budget(fitted, REFERENCE_S if len(summaries) > 1 else summaries[0]["media_s"])
    model = [prices.scale(budget, r) for r in RATES_PER_MIN]
    text = render(summaries, fitted, budget, model)
    result = {"bench": "aws_budget", "per_asset": summaries, "reference": budget.__dict__, "model": model}
    return text, result


def main(argv: list[str]) -> int:
    # The Lambdas' own INFO logs go to stdout, which `make bench` keeps for one JSON line per bench.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    durations = [float(a) for a in argv] or [20.0, 60.0]
    text, result = run(durations)
    print(text, file=sys.stderr)
    print(json.dumps(result))
    if not argv:
        DOC.write_text(update_document(DOC.read_text() if DOC.exists() else "", text))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
