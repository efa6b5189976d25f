"""IAM proven by the code itself. Every AWS operation each deployed function makes while the tests
drive it is recorded under moto, mapped to IAM actions and resources by the reviewed table below,
and held against the function's role in the synthesized template: every call is granted, on a
resource (and condition) that covers it, and nothing is granted that no call needs, apart from the
few actions listed in UNRECORDED with the reason the tests cannot see them.

Recording: a botocore `provide-client-params` hook, emitted with the caller's own parameters
(Bucket, Key, TableName, IndexName, ...) for every API call and for every presigned URL. A
presigned URL makes no request, but S3 checks the permission of the role that signed it when the
URL is used, so signing counts as a call of its operation. OpenSearch is HTTP, not botocore: the
functions talk to a small stand-in server (FakeOpenSearch) that records method and path, which
IAM sees as es:ESHttp<Method> on <domain ARN>/<path>.

Each function runs as deployed: with the environment its template gives it (tokens resolved to
this test's moto resources), building its own clients at its cold start; what the test does as the
client (uploading bytes, reading results) is never recorded. The encoder Lambda is invoked by the
API through botocore as on AWS; the invoke is answered by running the encoder's handler. AWS Batch
calls of the reconciler and the GPU batcher are answered the same way by FakeBatch (moto's Batch
would run Docker). A GPU step goes the deployed way: its state's message to the batcher, the job
it submits run by the ml image's entrypoint, which settles the step's task token."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.handlers
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.response import StreamingBody
from moto import mock_aws

from functions.api import handler as api_handler
from functions.batch_step import main as batch_step
from functions.gpu_batcher import handler as gpu_batcher_handler
from functions.pipeline_events import handler as events_handler
from functions.query_encoder import handler as encoder_handler
from functions.reconcile import handler as reconcile_handler
from functions.upload_event import handler as upload_handler
from functions.webhook_delivery import handler as delivery_handler
from infra import names
from mediaindex.pipeline.spec import STEP_BY_NAME
from tests.aws_runtime import ACCOUNT, REGION, build_aws_test_services, object_created_event
from tests.functional.test_lambda_handlers import CTX, canned, http, json_body, tenant_of
from tests.infra.conftest import Synth
from tests.infra.test_state_machine_faithful import serving as serving_file  # a loopback asset_url

pytestmark = [pytest.mark.infra, pytest.mark.aws]

MiB = 1024 * 1024
BOOTSTRAP_KEY = "k" * 48
ENCODER = "mediaindex-test-encoder"
RECONCILE = "mediaindex-test-reconcile"
DOMAIN = "mediaindex-test"
DOMAIN_ARN = f"arn:aws:es:{REGION}:{ACCOUNT}:domain/{DOMAIN}"

# The functions, and the role each runs with.
ROLES: dict[str, Callable[[Any], Any]] = {
    "api": lambda s: s.api.handler.role,
    "upload_event": lambda s: s.pipeline.upload_fn.role,
    "pipeline_events": lambda s: s.pipeline.events_fn.role,
    "gpu_batcher": lambda s: s.pipeline.gpu_batcher.role,
    "encoder": lambda s: s.encoder.role,
    "webhook_delivery": lambda s: s.webhooks.delivery_fn.role,
    "reconcile": lambda s: s.reconcile.fn.role,
    "batch_media": lambda s: s.compute.job_roles["media"],
    "batch_ml": lambda s: s.compute.job_roles["ml"],
}


# ---- operations -> IAM: the reviewed table -----------------------------------------------------
@dataclass(frozen=True)
class Need:
    """One permission a call needs: an action on a resource, with the request's condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


def bucket_arn(p: dict[str, Any]) -> str:
    return f"arn:aws:s3:::{p['Bucket']}"


def object_arn(p: dict[str, Any], key: str | None = None) -> str:
    return f"{bucket_arn(p)}/{key if key is not None else p['Key']}"


def table_arn(name: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def on_object(action: str) -> Callable[[dict[str, Any]], list[Need]]:
    return lambda p: [Need(action, object_arn(p))]


def object_read(p: dict[str, Any]) -> list[Need]:
    # The code reads a missing key as 404 (head() -> None, get -> NotFoundError). S3 answers 404 only
    # to a caller allowed s3:ListBucket on the bucket, else 403, and that check carries no s3:prefix.
    return [Need("s3:GetObject", object_arn(p)), Need("s3:ListBucket", bucket_arn(p))]


def on_table(action: str) -> Callable[[dict[str, Any]], list[Need]]:
    return lambda p: [Need(action, table_arn(p["TableName"], p.get("IndexName")))]


def leading_key(item_or_key: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The condition key IAM sets on an item request: the item's partition key value."""
    return (("dynamodb:LeadingKeys", item_or_key["pk"]["S"]),)


def on_item(action: str) -> Callable[[dict[str, Any]], list[Need]]:
    """A write to one item (PutItem: `Item`; UpdateItem, DeleteItem: `Key`), with its partition key."""
    return lambda p: [Need(action, table_arn(p["TableName"]), leading_key(p.get("Item") or p["Key"]))]


def batch_write(p: dict[str, Any]) -> list[Need]:
    return [
        Need(
            "dynamodb:BatchWriteItem",
            table_arn(t),
            leading_key(r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"]),
        )
        for t, requests in p["RequestItems"].items()
        for r in requests
    ]


def transact_write(p: dict[str, Any]) -> list[Need]:
    kinds = {
        "Put": "PutItem",
        "Update": "UpdateItem",
        "Delete": "DeleteItem",
        "ConditionCheck": "ConditionCheckItem",
    }
    return [
        Need(
            f"dynamodb:{kinds[kind]}",
            table_arn(item[kind]["TableName"]),
            leading_key(item[kind].get("Item") or item[kind]["Key"]),
        )
        for item in p["TransactItems"]
        for kind in item
    ]


def on_domain(action: str) -> Callable[[dict[str, Any]], list[Need]]:
    return lambda p: [Need(action, f"{DOMAIN_ARN}{p['path']}")]


def function_arn(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def token_machine(p: dict[str, Any]) -> str:
    """The state machine a task token belongs to. A real token is opaque and IAM authorizes it on
    the machine whose execution issued it; the test's tokens (moto's Step Functions accepts any)
    are written `<machine ARN>#<name>` to carry it."""
    return str(p["taskToken"]).split("#", 1)[0]


def on_token(action: str) -> Callable[[dict[str, Any]], list[Need]]:
    return lambda p: [Need(action, token_machine(p))]


def queue_arn(url: str) -> str:
    """https://sqs.<region>.amazonaws.com/<account>/<name> -> the queue's ARN."""
    account, name = urlsplit(url).path.strip("/").split("/")
    return f"arn:aws:sqs:{REGION}:{account}:{name}"


OPERATIONS: dict[str, Callable[[dict[str, Any]], list[Need]]] = {
    # S3. Multipart uploads are writes: IAM has no action of their own for create, part, complete.
    "s3.PutObject": on_object("s3:PutObject"),
    "s3.CreateMultipartUpload": on_object("s3:PutObject"),
    "s3.UploadPart": on_object("s3:PutObject"),
    "s3.CompleteMultipartUpload": on_object("s3:PutObject"),
    "s3.AbortMultipartUpload": on_object("s3:AbortMultipartUpload"),
    "s3.ListParts": on_object("s3:ListMultipartUploadParts"),
    "s3.GetObject": object_read,
    "s3.HeadObject": object_read,
    "s3.DeleteObject": on_object("s3:DeleteObject"),
    "s3.DeleteObjects": lambda p: [
        Need("s3:DeleteObject", object_arn(p, o["Key"])) for o in p["Delete"]["Objects"]
    ],
    "s3.ListObjectsV2": lambda p: [
        Need("s3:ListBucket", bucket_arn(p), (("s3:prefix", p["Prefix"]),) if "Prefix" in p else ())
    ],
    # DynamoDB: a query on a GSI is authorized on <table>/index/<name>.
    **{f"dynamodb.{op}": on_table(f"dynamodb:{op}") for op in ("GetItem", "Query", "Scan")},
    # Writes carry the item's partition key: a role may be held to its own kinds of item.
    **{f"dynamodb.{op}": on_item(f"dynamodb:{op}") for op in ("PutItem", "UpdateItem", "DeleteItem")},
    "dynamodb.BatchGetItem": lambda p: [
        Need("dynamodb:BatchGetItem", table_arn(t)) for t in p["RequestItems"]
    ],
    "dynamodb.BatchWriteItem": batch_write,
    "dynamodb.TransactWriteItems": transact_write,
    "dynamodb.TransactGetItems": lambda p: [
        Need("dynamodb:GetItem", table_arn(i["Get"]["TableName"])) for i in p["TransactItems"]
    ],
    # Step Functions, Lambda, Secrets Manager.
    "sfn.StartExecution": lambda p: [Need("states:StartExecution", p["stateMachineArn"])],
    "sfn.StopExecution": lambda p: [Need("states:StopExecution", p["executionArn"])],
    "sfn.DescribeExecution": lambda p: [Need("states:DescribeExecution", p["executionArn"])],
    "sfn.ListExecutions": lambda p: [Need("states:ListExecutions", p["stateMachineArn"])],
    **{
        f"sfn.{op}": on_token(f"states:{op}")
        for op in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat")
    },
    "lambda.Invoke": lambda p: [Need("lambda:InvokeFunction", function_arn(p["FunctionName"]))],
    "secrets-manager.GetSecretValue": lambda p: [Need("secretsmanager:GetSecretValue", p["SecretId"])],
    # KMS (webhook secrets): the code names the key, the one that sealed what it opens.
    "kms.Encrypt": lambda p: [Need("kms:Encrypt", p["KeyId"])],
    "kms.Decrypt": lambda p: [Need("kms:Decrypt", p["KeyId"])],
    "sqs.SendMessage": lambda p: [Need("sqs:SendMessage", queue_arn(p["QueueUrl"]))],
    # Batch (answered by FakeBatch): ListJobs has no resource-level permission, so it needs "*".
    "batch.ListJobs": lambda p: [Need("batch:ListJobs", "*")],
    # SubmitJob is authorized on the job queue and on the job definition (answered by FakeBatch).
    "batch.SubmitJob": lambda p: [
        Need("batch:SubmitJob", p["jobQueue"]),
        Need("batch:SubmitJob", p["jobDefinition"]),
    ],
    "batch.TerminateJob": lambda p: [
        Need("batch:TerminateJob", f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{p['jobId']}")
    ],
    # OpenSearch domain (HTTP, recorded by FakeOpenSearch): the method names the action.
    **{f"es.{m}": on_domain(f"es:ESHttp{m.capitalize()}") for m in ("GET", "HEAD", "POST", "PUT", "DELETE")},
}

# Granted, needed, and not recordable by these tests: (role or "*", action) -> why.
UNRECORDED = {
    ("*", "logs:CreateLogStream"): "the Lambda service writes the function's logs with its role",
    ("*", "logs:PutLogEvents"): "the Lambda service writes the function's logs with its role",
    ("*", "xray:PutTraceSegments"): "active tracing: the Lambda runtime sends the trace segments",
    ("*", "xray:PutTelemetryRecords"): "active tracing: the Lambda runtime sends the telemetry",
    **{
        (fn, "sqs:SendMessage"): "an event the function fails on for good goes to its dead-letter "
        "queue, sent by the Lambda service with the function's role"
        for fn in ("upload_event", "gpu_batcher")
    },
    **{
        (fn, action): "the Lambda service polls the function's queue for it (its event source mapping) "
        "with the function's role"
        for fn in ("webhook_delivery", "gpu_batcher")
        for action in (
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        )
    },
    ("batch_ml", "states:SendTaskHeartbeat"): "a GPU batch job sends heartbeats every minute for the "
    "items still waiting; the test's batches end sooner",
    **{
        (fn, "es:ESHttpDelete"): "dropping an index key of a release before pools deletes the index it "
        "owns; keys made now join a pool, so the test never drops one"
        for fn in ("api", "pipeline_events")
    },
    ("batch_media", "s3:AbortMultipartUpload"): "s3transfer aborts a failed multipart upload of a large "
    "derivative (proxy, original fetched from a URL); the test's files fit one PutObject",
    ("batch_ml", "s3:AbortMultipartUpload"): "s3transfer aborts a failed multipart upload of a large "
    "derivative; the test's files fit one PutObject",
}


# ---- recording ---------------------------------------------------------------------------------
@dataclass
class Recorder:
    """Records the operations of the function running now (a stack: the API runs the encoder)."""

    running: list[str] = field(default_factory=list)
    calls: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    answer_invoke: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # The payloads of asynchronous invokes (InvocationType=Event): queued, as Lambda would, not run.
    queued: list[dict[str, Any]] = field(default_factory=list)
    # (function, operation) -> what to do, once, when that function first makes that call
    triggers: dict[tuple[str, str], Callable[[], None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, params: dict[str, Any]) -> None:
        with self.lock:
            if not self.running:
                return
            self.calls[self.running[-1]].append((operation, dict(params)))
            trigger = self.triggers.pop((self.running[-1], operation), None)
        if trigger is not None:
            trigger()

    def on_params(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        """provide-client-params.<service>.<Operation>: every call and every presigned URL."""
        _event, service, operation = event_name.split(".", 2)
        self.record(f"{service}.{operation}", params)

    def on_invoke(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        """before-call.lambda.Invoke: answers with the encoder handler's result, as Lambda would;
        an asynchronous invoke is queued (202, nothing run): the test runs its function after."""
        if not self.running or self.answer_invoke is None:
            return None
        if params["headers"].get("X-Amz-Invocation-Type") == "Event":
            self.queued.append(json.loads(params["body"]))
            return AWSResponse(params["url"], 202, HTTPHeaders(), None), {"StatusCode": 202}
        payload = json.dumps(self.answer_invoke(json.loads(params["body"]))).encode()
        body = StreamingBody(io.BytesIO(payload), len(payload))
        return AWSResponse(params["url"], 200, HTTPHeaders(), None), {"StatusCode": 200, "Payload": body}


class FakeOpenSearch(ThreadingHTTPServer):
    """Just enough of OpenSearch's REST API for the adapter (indexes behind aliases, a pool's
    filtered aliases added and removed by `_aliases`, mappings, bulk, search answering every stored
    document), recording each request's method and path."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(("127.0.0.1", 0), _OpenSearchHandler)
        self.recorder = recorder
        self.indices: dict[str, dict[str, Any]] = {}  # physical name -> aliases (with specs), mappings, docs

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def resolve(self, name: str) -> list[str]:
        if name in self.indices:
            return [name]
        pattern = re.compile(re.escape(name).replace(r"\*", ".*"))
        return [i for i, v in self.indices.items() if name in v["aliases"] or pattern.fullmatch(i)]

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        if parts[:1] == ["_alias"]:
            found = self.resolve(parts[1])
            specs = {i: {"aliases": {parts[1]: self.indices[i]["aliases"].get(parts[1], {})}} for i in found}
            return (200, specs) if found else (404, {"status": 404})
        if parts == ["_bulk"]:
            return 200, {"errors": False, "items": self._bulk(body)}
        if parts == ["_aliases"]:
            for action in json.loads(body)["actions"]:
                ((op, spec),) = action.items()
                if spec["index"] not in self.indices:
                    return 404, {"status": 404}
                aliases = self.indices[spec["index"]]["aliases"]
                if op == "add":
                    aliases[spec["alias"]] = {k: v for k, v in spec.items() if k in ("filter", "routing")}
                else:
                    aliases.pop(spec["alias"], None)
            return 200, {"acknowledged": True}
        found = self.resolve(parts[0])
        action = parts[1] if len(parts) > 1 else None
        if method == "PUT" and action is None:
            spec = json.loads(body)
            self.indices[parts[0]] = {
                "aliases": dict(spec.get("aliases", {})),
                "mappings": spec["mappings"],
                "docs": {},
            }
            return 200, {"acknowledged": True}
        if not found:
            return 404, {"status": 404}
        if action == "_mapping" and method == "GET":
            return 200, {i: {"mappings": self.indices[i]["mappings"]} for i in found}
        if action == "_mapping":
            for i in found:
                self.indices[i]["mappings"]["properties"].update(json.loads(body)["properties"])
            return 200, {"acknowledged": True}
        if action == "_search":
            docs = [(i, d) for i in found for d in self.indices[i]["docs"].items()]
            hits = [{"_index": i, "_id": k, "_score": 1.5, "_source": src} for i, (k, src) in docs]
            return 200, {"hits": {"hits": hits}}
        if action == "_delete_by_query":
            return 200, {"deleted": 0}
        if action == "_refresh" and method == "POST":
            return 200, {"_shards": {"failed": 0}}
        if method == "DELETE":
            for i in found:
                del self.indices[i]
            return 200, {"acknowledged": True}
        return 400, {"error": f"the fake does not know {method} {path}"}

    def _bulk(self, body: bytes) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        items, i = [], 0
        while i < len(lines):
            op, meta = next(iter(lines[i].items()))
            if op == "index":
                for name in self.resolve(meta["_index"]):
                    self.indices[name]["docs"][meta["_id"]] = lines[i + 1]
                i += 2
            else:
                i += 1
            items.append({op: {"status": 200}})
        return items


class _OpenSearchHandler(BaseHTTPRequestHandler):
    server: FakeOpenSearch

    def _handle(self) -> None:
        path = urlsplit(self.path).path
        self.server.recorder.record(f"es.{self.command}", {"path": path})
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, answer = self.server.answer(self.command, path, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args: Any) -> None:
        pass


class FakeBatch:
    """AWS Batch for the reconciler and the GPU batcher, answering at before-call as Batch would
    (moto's Batch runs jobs in Docker, and the test cannot make one wait RUNNABLE): each queue
    listed holds one job RUNNABLE for two hours, past every max_waiting_s; terminating it is
    acknowledged; a job submitted is kept (the test then runs it as the ml image would)."""

    def __init__(self) -> None:
        self.terminated: list[str] = []
        self.submitted: list[dict[str, Any]] = []

    def submit_job(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = json.loads(params["body"])
        self.submitted.append(request)
        job_id = f"job-{len(self.submitted)}"
        job_arn = f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}"
        return self._answer(params, {"jobId": job_id, "jobName": request["jobName"], "jobArn": job_arn})

    @staticmethod
    def _answer(params: dict[str, Any], parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse(params["url"], 200, HTTPHeaders(), None), parsed

    def list_jobs(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = json.loads(params["body"])
        assert request["jobStatus"] == "RUNNABLE", request
        queued = int((time.time() - 2 * 3600) * 1000)
        job = {"jobId": f"job-{request['jobQueue'].rsplit('/', 1)[1]}", "jobName": "tsk-stuck-transcription"}
        return self._answer(params, {"jobSummaryList": [{**job, "createdAt": queued}]})

    def terminate_job(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.terminated.append(json.loads(params["body"])["jobId"])
        return self._answer(params, {})


class Receiver(ThreadingHTTPServer):
    """A webhook target on loopback: answers 503 to the first delivery (so one is retried), then 200."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.events: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.events.append(self.headers["Mediaindex-Event"])
        self.send_response(503 if len(self.server.events) == 1 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


# ---- the template side -------------------------------------------------------------------------
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}


def render(value: Any, world: dict[tuple[str, str | None], str]) -> str:
    """A template value as a string, its tokens replaced by this test's resources. A token of a
    resource the test does not stand in for stays a marker, which matches no recorded resource."""
    if isinstance(value, str):
        return value.replace(names.PLACEHOLDER_ACCOUNT, ACCOUNT)
    if "Ref" in value:
        ref = value["Ref"]
        return PSEUDO.get(ref) or world.get((ref, None), f"<{ref}>")
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return world.get((logical_id, attribute), f"<{logical_id}.{attribute}>")
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(p, world) for p in parts)
    return f"<{json.dumps(value)}>"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def glob(pattern: str, value: str) -> bool:
    """IAM wildcards: * any run of characters (slashes too), ? one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


@dataclass
class Statement:
    actions: list[str]
    resources: list[str]
    conditions: dict[str, dict[str, list[str]]]

    def allows(self, action: str, resource_pattern: str, need: Need) -> bool:
        return (
            glob(action.lower(), need.action.lower())
            and glob(resource_pattern, need.resource)
            and self.holds(need)
        )

    def holds(self, need: Need) -> bool:
        context = dict(need.context)
        for operator, tests in self.conditions.items():
            # ForAllValues over the one value a request carries; like IAM, it holds when the key is absent.
            for_all = operator.startswith("ForAllValues:")
            operator = operator.removeprefix("ForAllValues:")
            base, if_exists = operator.removesuffix("IfExists"), operator.endswith("IfExists") or for_all
            for key, wanted in tests.items():
                if key not in context:
                    if not if_exists:
                        return False
                    continue
                match base:
                    case "StringLike":
                        ok = any(glob(w, context[key]) for w in wanted)
                    case "StringEquals":
                        ok = context[key] in wanted
                    case _:
                        raise AssertionError(f"condition operator {operator} is not modelled here")
                if not ok:
                    return False
        return True


def role_statements(synth: Synth, role: Any, world: dict[tuple[str, str | None], str]) -> list[Statement]:
    role_id = synth.stack.get_logical_id(role.node.default_child)
    resources = synth.doc["Resources"]
    assert not resources[role_id]["Properties"].get("ManagedPolicyArns"), (
        "function roles carry no managed policy"
    )
    documents = [p["PolicyDocument"] for p in resources[role_id]["Properties"].get("Policies", [])]
    documents += [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    out = []
    for document in documents:
        for s in document["Statement"]:
            assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s, s
            conditions = {
                op: {k: [render(v, world) for v in as_list(vs)] for k, vs in tests.items()}
                for op, tests in s.get("Condition", {}).items()
            }
            out.append(
                Statement(
                    as_list(s["Action"]), [render(r, world) for r in as_list(s["Resource"])], conditions
                )
            )
    return out


# ---- driving the functions -----------------------------------------------------------------------
@dataclass
class Deployment:
    """The functions' environments (from the template) and what the test stands in for them."""

    synth: Synth
    world: dict[tuple[str, str | None], str]
    extra: dict[str, str]
    recorder: Recorder
    batch: FakeBatch

    def environment(self, fn: str) -> dict[str, str]:
        resources = self.synth.doc["Resources"]
        stack = self.synth.stack
        if fn.startswith("batch_"):
            definition = stack.compute.job_definitions[fn.removeprefix("batch_")]
            props = resources[stack.get_logical_id(definition.node.default_child)]["Properties"]
            env = {e["Name"]: e["Value"] for e in props["ContainerProperties"]["Environment"]}
        else:
            function = {
                "api": stack.api.handler.function,
                "upload_event": stack.pipeline.upload_fn.function,
                "pipeline_events": stack.pipeline.events_fn.function,
                "gpu_batcher": stack.pipeline.gpu_batcher.function,
                "encoder": stack.encoder.function,
                "webhook_delivery": stack.webhooks.delivery_fn.function,
                "reconcile": stack.reconcile.fn.function,
            }[fn]
            env = resources[stack.get_logical_id(function.node.default_child)]["Properties"]["Environment"][
                "Variables"
            ]
        resolved = {k: render(v, self.world) for k, v in env.items()}
        # Weights live in the ml image (containers/ml); here the packaged models stand in for them.
        for name in ("MEDIAINDEX_TEXT_MODEL_PATH", "MEDIAINDEX_CLIP_MODEL_PATH", "MEDIAINDEX_WHISPER_MODEL"):
            resolved.pop(name, None)
        return {**resolved, **self.extra}

    @contextmanager
    def running(self, fn: str, overrides: dict[str, str] | None = None) -> Iterator[None]:
        """Runs the block as function `fn`: its environment (with `overrides`), its calls recorded."""
        saved = dict(os.environ)
        for name in [n for n in os.environ if n.startswith("MEDIAINDEX_")]:
            del os.environ[name]
        os.environ.update({**self.environment(fn), **(overrides or {})})
        self.recorder.running.append(fn)
        try:
            yield
        finally:
            self.recorder.running.pop()
            os.environ.clear()
            os.environ.update(saved)

    def api(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        with self.running("api"):
            response = http(method, path, key=BOOTSTRAP_KEY, body=body)
        assert response["statusCode"] == expect, (method, path, response.get("body"))
        return json_body(response) if response.get("body") else None

    def delete_during(self, fn: str, operation: str, asset_id: str) -> None:
        """Deletes the asset through the API when `fn` first calls `operation`."""

        def delete() -> None:
            if threading.current_thread() is threading.main_thread():
                self.api("DELETE", f"/v1/assets/{asset_id}", expect=204)
                return
            # An s3transfer worker thread: Mangum wants an event loop of its own there.
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                self.api("DELETE", f"/v1/assets/{asset_id}", expect=204)
            finally:
                asyncio.set_event_loop(None)
                loop.close()

        self.recorder.triggers[(fn, operation)] = delete

    def step(self, tenant_id: str, task_id: str, step: str) -> None:
        if STEP_BY_NAME[step].compute == "gpu":
            self.gpu_step(tenant_id, task_id, step)
            return
        with self.running(f"batch_{STEP_BY_NAME[step].image}"):
            assert batch_step.run(tenant_id, task_id, step) == batch_step.EXIT_OK, step

    def gpu_step(self, tenant_id: str, task_id: str, step: str, *, crash: bool = False) -> dict[str, Any]:
        """A GPU step as deployed: the message its state sends, handed to the batcher as the event
        source mapping would; the job it submitted, run as the ml image runs it. The item's token
        ends in SendTaskSuccess, or (with `crash`: its first table read fails) SendTaskFailure.
        Returns the job's SubmitJob request."""
        machine = self.environment("upload_event")[names.ENV_STATE_MACHINE]
        token = f"{machine}#{task_id}-{step}"
        body = {"tenant_id": tenant_id, "task_id": task_id, "step": step, "token": token}
        record = {"messageId": f"msg-{task_id}-{step}", "body": json.dumps(body), "eventSource": "aws:sqs"}
        submitted = len(self.batch.submitted)
        answer = self.event(gpu_batcher_handler, {"Records": [record]}, "gpu_batcher")
        assert answer == {"batchItemFailures": []}
        (request,) = self.batch.submitted[submitted:]
        flag, key = request["containerOverrides"]["command"]
        if crash:

            def fail() -> None:
                raise ConnectionError("the table is out of reach")

            self.recorder.triggers[("batch_ml", "dynamodb.GetItem")] = fail
        with self.running("batch_ml"):
            assert batch_step.main([flag, key]) == batch_step.EXIT_OK, step
        settled = {
            op
            for op, p in self.recorder.calls["batch_ml"]
            if op.startswith("sfn.") and p["taskToken"] == token
        }
        assert settled == {"sfn.SendTaskFailure" if crash else "sfn.SendTaskSuccess"}, settled
        return request

    def event(
        self, handler: Any, event: dict[str, Any], fn: str, overrides: dict[str, str] | None = None
    ) -> dict[str, Any]:
        with self.running(fn, overrides):
            result: dict[str, Any] = handler.handler(event, CTX)
        return result


def drive(
    d: Deployment, runtime: Any, clip: bytes, media_url: str, receiver: Receiver, queue_url: str
) -> None:
    """Everything the functions do for a user: one pass over the API, the upload event, every
    pipeline step, the pipeline events, the query encoder, the webhook deliveries, a reconcile
    sweep."""
    s3, bucket = runtime.aws_clients.s3, runtime.settings.bucket_name
    sqs = runtime.aws_clients.get("sqs")
    index = d.api("POST", "/v1/indexes", {"name": "clips"}, expect=201)
    tenant = tenant_of(runtime, BOOTSTRAP_KEY)  # the bootstrap key works: the API's cold start stored it
    # A webhook on every settlement, its target on loopback (MEDIAINDEX_ALLOW_PRIVATE_URLS).
    events = ["asset.ready", "asset.failed", "task.completed", "task.failed"]
    hook = d.api("POST", "/v1/webhooks", {"url": receiver.url, "events": events}, expect=201)
    deliveries = f"/v1/webhooks/{hook['id']}/deliveries"

    def deliver() -> None:
        """The queue's visible messages, handed to the delivery function as the Lambda service would."""
        records = []
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            for m in messages:
                records.append({"messageId": m["MessageId"], "body": m["Body"]})
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        assert records, "deliveries were queued"
        answer = d.event(delivery_handler, {"Records": records}, "webhook_delivery")
        assert answer == {"batchItemFailures": []}

    def upload_event(asset_id: str) -> str:
        asset = runtime.stores.assets.get(tenant, asset_id)
        head = s3.head_object(Bucket=bucket, Key=asset.upload.key)
        event = object_created_event(bucket, asset.upload.key, head["ContentLength"], head["ETag"].strip('"'))
        started = d.event(upload_handler, event, "upload_event")
        if "task_id" in started:
            return str(started["task_id"])
        # Completing a multipart upload started the task already; the event found nothing to do.
        page = runtime.services.tasks.list_tasks(
            tenant, asset_id=asset_id, active_only=False, limit=1, cursor=None
        )
        return str(page.data[0].id)

    def finished(task_id: str) -> None:
        event = {**canned("sfn_task_finished.json"), "tenant_id": tenant, "task_id": task_id}
        assert d.event(events_handler, event, "pipeline_events")["status"] == "finished"

    def uploaded(name: str, **fields: Any) -> str:
        """An asset created through the API whose original the client then PUT into S3."""
        body = {"index_id": index["id"], "name": name, "size_bytes": len(clip), "content_type": "video/mp4"}
        asset_id = str(d.api("POST", "/v1/assets", {**body, **fields}, expect=201)["asset"]["id"])
        s3.put_object(Bucket=bucket, Key=runtime.stores.assets.get(tenant, asset_id).upload.key, Body=clip)
        return asset_id

    # One PUT upload, not kept (save_original=false), through every step.
    asset_id = uploaded("talk.mp4", save_original=False, user_metadata={"topic": "cats"})
    task_id = upload_event(asset_id)
    for step in ("probe", "render", "transcription", "embedding"):
        d.step(tenant, task_id, step)
    finished(task_id)  # drops the original
    assert not runtime.blobs.list_keys(runtime.stores.assets.get(tenant, asset_id).upload.key)

    # Its webhook deliveries: the first attempt fails (503) and is queued again with its delay
    # (about 30 s: not visible yet), then sent again at once through the API.
    deliver()
    (retried,) = [x for x in d.api("GET", deliveries)["data"] if x["state"] == "pending"]
    assert (retried["attempts"], retried["status_code"]) == (1, 503)
    d.api("POST", f"{deliveries}/{retried['id']}/redeliver", expect=202)
    deliver()
    assert {x["state"] for x in d.api("GET", deliveries)["data"]} == {"succeeded"}

    # A re-index: the API starts it and its first task. An upload lands meanwhile (indexed into the
    # live generation). The events Lambda, told the machine by the event, settles the re-index's task
    # and moves it on: it finds the new asset unbuilt and starts its task; settling that one swaps
    # generations (the old one's search index is dropped) and ends the re-index.
    def settled(task_id: str) -> None:
        arn = runtime.settings.state_machine_arn
        event = {
            **canned("sfn_task_finished.json"),
            "tenant_id": tenant,
            "task_id": task_id,
            "state_machine_arn": arn,
        }
        assert d.event(events_handler, event, "pipeline_events")["status"] == "finished"

    def reindex_tasks() -> list[str]:
        return list(runtime.stores.indexes.get(tenant, index["id"]).reindex.in_flight)

    d.api("POST", f"/v1/indexes/{index['id']}/reindex", {}, expect=202)
    (first,) = reindex_tasks()
    late = upload_event(uploaded("late-talk.mp4"))
    for step in ("probe", "render", "transcription", "embedding"):
        d.step(tenant, late, step)
    settled(late)
    for step in ("probe", "embedding"):
        d.step(tenant, first, step)
    settled(first)
    (second,) = reindex_tasks()
    for step in ("probe", "embedding"):
        d.step(tenant, second, step)
    settled(second)
    swapped = d.api("GET", f"/v1/indexes/{index['id']}")
    assert swapped["generation"] == 2 and swapped["reindex"]["state"] == "completed", swapped["reindex"]

    # A task whose execution never reports back (its events Lambda never ran): the reconcile sweep
    # at the end settles it, dropping its original (not kept, and its proxy exists).
    stuck_id = uploaded("stuck.mp4", save_original=False)
    stuck_task = upload_event(stuck_id)
    for step in ("probe", "render"):
        d.step(tenant, stuck_task, step)

    # Reading it back, searching, changing it.
    for path in ("", "/derivatives", "/transcript", "/segments"):
        d.api("GET", f"/v1/assets/{asset_id}{path}")
    d.api("GET", f"/v1/assets/{asset_id}/download", expect=409)  # not kept
    d.api("GET", "/v1/assets")
    d.api("PATCH", f"/v1/assets/{asset_id}", {"name": "renamed.mp4"})
    found = d.api("POST", "/v1/search", {"index_id": index["id"], "query_text": "quick brown fox"})
    assert found["data"], "the search found the indexed segments"
    d.api("GET", "/v1/usage")
    d.api("GET", f"/v1/tasks/{task_id}")

    # A re-run reads the proxy in place of the deleted original (each image's role finds it gone: a
    # 404), replaces the keyframes and writes into the search index that exists now.
    rerun = d.api("POST", "/v1/tasks", {"asset_id": asset_id, "feature_types": ["embedding"]}, expect=201)
    for step in ("probe", "embedding"):
        d.step(tenant, rerun["id"], step)

    # A GPU item that crashes fails its own token. A batch job that dies as a whole (Spot reclaim):
    # its FAILED event has the batcher read the manifest back and fail the tokens it names.
    late_asset = runtime.stores.tasks.get(tenant, late).asset_id  # settled: free for a new task
    crashed = d.api("POST", "/v1/tasks", {"asset_id": late_asset, "feature_types": ["embedding"]}, expect=201)
    d.step(tenant, crashed["id"], "probe")
    job = d.gpu_step(tenant, crashed["id"], "embedding", crash=True)
    failed_job = {
        "source": "aws.batch",
        "detail-type": "Batch Job State Change",
        "detail": {
            "jobId": "job-reclaimed",
            "jobQueue": job["jobQueue"],
            "status": "FAILED",
            "statusReason": "Host EC2 (instance i-0abc) terminated.",
            "container": {"command": job["containerOverrides"]["command"]},
        },
    }
    assert d.event(gpu_batcher_handler, failed_job, "gpu_batcher") == {"status": "failed", "tokens": 1}

    # A multipart upload: created, parts signed, uploaded by the client, completed; one feature fails.
    big = bytes(6 * MiB)
    created = d.api(
        "POST", "/v1/assets", {"index_id": index["id"], "name": "big.mp4", "size_bytes": len(big)}, expect=201
    )
    multipart, big_id = created["upload"]["multipart"], created["asset"]["id"]
    d.api("POST", f"/v1/assets/{big_id}/upload/parts", {"part_numbers": [1, 2]})
    key = runtime.stores.assets.get(tenant, big_id).upload.key
    parts = [
        {"part_number": n, "etag": s3.upload_part(Bucket=bucket, Key=key, UploadId=multipart["upload_id"],
                                                  PartNumber=n, Body=chunk)["ETag"]}
        for n, chunk in ((1, big[: 5 * MiB]), (2, big[5 * MiB :]))
    ]  # fmt: skip
    d.api("POST", f"/v1/assets/{big_id}/upload/complete", {"parts": parts})
    big_task = upload_event(big_id)
    failed = {**canned("sfn_catch_feature_failed.json"), "tenant_id": tenant, "task_id": big_task}
    assert d.event(events_handler, failed, "pipeline_events")["status"] == "recorded"
    finished(big_task)

    # An original that lands after its asset was deleted: the upload event deletes it.
    late_id = uploaded("late.mp4")
    late_key = runtime.stores.assets.get(tenant, late_id).upload.key
    d.api("DELETE", f"/v1/assets/{late_id}", expect=204)
    s3.put_object(Bucket=bucket, Key=late_key, Body=clip)
    head = s3.head_object(Bucket=bucket, Key=late_key)
    late_event = object_created_event(bucket, late_key, head["ContentLength"], head["ETag"].strip('"'))
    assert d.event(upload_handler, late_event, "upload_event")["status"] == "deleted"
    assert not runtime.blobs.list_keys(late_key)

    # A multipart upload given up.
    created = d.api(
        "POST", "/v1/assets", {"index_id": index["id"], "name": "gone.mp4", "size_bytes": 6 * MiB}, expect=201
    )
    d.api("DELETE", f"/v1/assets/{created['asset']['id']}/upload", expect=204)

    # A re-run cancelled before it ran.
    rerun = d.api("POST", "/v1/tasks", {"asset_id": asset_id, "feature_types": ["transcription"]}, expect=201)
    d.api("POST", f"/v1/tasks/{rerun['id']}/cancel", {})

    # Assets deleted while a step runs (at the step's first upload): the step removes what it wrote
    # after the purge, files (an original fetched, derivatives), search documents and rows.
    created = d.api(
        "POST", "/v1/assets", {"index_id": index["id"], "name": "url.mp4", "asset_url": media_url}, expect=201
    )
    d.delete_during("batch_media", "s3.PutObject", created["asset"]["id"])
    d.step(tenant, created["task"]["id"], "fetch")
    kept = uploaded("kept.mp4")
    task_id = upload_event(kept)
    d.step(tenant, task_id, "probe")
    d.delete_during("batch_media", "s3.PutObject", kept)
    d.step(tenant, task_id, "render")
    features = {"asset_id": asset_id, "feature_types": ["transcription", "embedding"]}
    rerun = d.api("POST", "/v1/tasks", features, expect=201)
    d.step(tenant, rerun["id"], "probe")
    # Deleted as transcription writes its transcript (embedding writes nothing to S3: it reads
    # render's plan): the ml role takes back what it wrote after the purge
    d.delete_during("batch_ml", "s3.PutObject", asset_id)
    d.step(tenant, rerun["id"], "transcription")
    d.step(tenant, rerun["id"], "embedding")
    assert runtime.stores.assets.get(tenant, kept) is runtime.stores.assets.get(tenant, asset_id) is None

    # One sweep, as if the executions still running (moto's never end) had run for hours: each is
    # stopped; the stuck task's features that never ran fail, and the settled task is reported to
    # the webhook; on each queue FakeBatch's job RUNNABLE for hours is ended.
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    swept = d.event(reconcile_handler, scheduled, "reconcile", {"MEDIAINDEX_RECONCILE_MAX_EXECUTION_S": "1"})
    assert stuck_task in swept["tasks"] and swept["counts"]["released"] == 2, swept
    stuck = runtime.stores.tasks.get(tenant, stuck_task)
    assert "execution_timeout" in {fs.error for fs in stuck.features.values()}  # what had not run
    assert not runtime.blobs.list_keys(runtime.stores.assets.get(tenant, stuck_id).upload.key)

    # The index deleted: the API purges nothing itself but starts the purge job (the reconcile
    # function, invoked asynchronously), which then purges its assets, files and rows.
    d.api("DELETE", f"/v1/indexes/{index['id']}", expect=202)
    assert d.recorder.queued == [{"purge": True}], d.recorder.queued
    assert d.event(reconcile_handler, d.recorder.queued.pop(), "reconcile") == {"purged": 1}
    assert runtime.stores.indexes.get(tenant, index["id"]) is None
    assert not [k for k in runtime.blobs.list_keys("derived/") if tenant in k.split("/")]


@dataclass
class Recorded:
    needs: dict[
        str, dict[Need, set[str]]
    ]  # function -> each permission its calls needed -> by which operations
    world: dict[tuple[str, str | None], str]  # template tokens -> this test's resources


@pytest.fixture(scope="module")
def recorded(synth: Synth, talking_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Drives every function once (tests/conftest.py's talking clip: ffmpeg and espeak-ng needed)."""
    tmp = tmp_path_factory.mktemp("iam")
    clip = talking_clip.read_bytes()
    recorder = Recorder()
    batch = FakeBatch()
    hooks = [
        ("provide-client-params", recorder.on_params),
        ("before-call.lambda.Invoke", recorder.on_invoke),
        ("before-call.batch.ListJobs", batch.list_jobs),
        ("before-call.batch.TerminateJob", batch.terminate_job),
        ("before-call.batch.SubmitJob", batch.submit_job),
    ]
    search = FakeOpenSearch(recorder)
    receiver = Receiver()
    stack = synth.stack

    def logical(construct: Any) -> str:
        return str(stack.get_logical_id(construct.node.default_child))

    with (
        pytest.MonkeyPatch.context() as mp,
        mock_aws(),
        serving(search),
        serving(receiver),
        serving_file(clip) as media_url,
    ):
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
            mp.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            mp.delenv(name, raising=False)
        for hook in hooks:
            botocore.handlers.BUILTIN_HANDLERS.append(hook)  # sessions made from now on carry them
        # Cold starts: each function builds its own runtime and clients on its first invocation.
        mp.setattr(api_handler, "_asgi_handler", None)
        for module in (
            upload_handler,
            events_handler,
            encoder_handler,
            delivery_handler,
            reconcile_handler,
            gpu_batcher_handler,
        ):
            mp.setattr(module, "_state", {})
        runtime = build_aws_test_services(tmp)  # the table, the bucket and a state machine, in moto
        try:
            assert runtime.aws_clients is not None
            secret = runtime.aws_clients.get("secretsmanager").create_secret(
                Name="mediaindex-test-key", SecretString=BOOTSTRAP_KEY
            )["ARN"]
            key_arn = runtime.aws_clients.get("kms").create_key()["KeyMetadata"]["Arn"]
            sqs = runtime.aws_clients.get("sqs")
            queue_url = sqs.create_queue(QueueName="mediaindex-test-webhooks")["QueueUrl"]
            queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
            job_queues: dict[tuple[str, str | None], str] = {
                (logical(q), "JobQueueArn"): f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/mediaindex-{name}"
                for name, q in (("cpu", stack.compute.cpu_queue), ("gpu", stack.compute.gpu_queue))
            }
            s = runtime.settings
            world: dict[tuple[str, str | None], str] = {
                (logical(stack.storage.table), None): s.table_name,
                (logical(stack.storage.table), "Arn"): table_arn(s.table_name),
                (logical(stack.storage.bucket), None): s.bucket_name,
                (logical(stack.storage.bucket), "Arn"): f"arn:aws:s3:::{s.bucket_name}",
                (logical(stack.pipeline.state_machine), None): str(s.state_machine_arn),
                (logical(stack.pipeline.state_machine), "Name"): str(s.state_machine_arn).rsplit(":", 1)[1],
                (logical(stack.search.domain), "Arn"): DOMAIN_ARN,
                (logical(stack.search.domain), "DomainEndpoint"): search.url.removeprefix("http://"),
                (logical(stack.encoder.function), None): ENCODER,
                (logical(stack.encoder.function), "Arn"): function_arn(ENCODER),
                (logical(stack.reconcile.fn.function), None): RECONCILE,
                (logical(stack.reconcile.fn.function), "Arn"): function_arn(RECONCILE),
                (logical(stack.bootstrap_key.secret), None): secret,
                (logical(stack.webhooks.key), "Arn"): key_arn,
                (logical(stack.webhooks.queue), None): queue_url,
                (logical(stack.webhooks.queue), "Arn"): queue["Attributes"]["QueueArn"],
                **job_queues,
                **{
                    (
                        logical(d),
                        None,
                    ): f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/mediaindex-{image}:1"
                    for image, d in stack.compute.job_definitions.items()
                },
            }
            extra = {
                "MEDIAINDEX_DATA_DIR": str(tmp / "data"),
                "MEDIAINDEX_OPENSEARCH_URL": search.url,  # the stand-in speaks plain HTTP
                "MEDIAINDEX_ALLOW_PRIVATE_URLS": "true",  # the asset_url is served on loopback
                "MEDIAINDEX_MULTIPART_THRESHOLD_BYTES": str(5 * MiB),  # multipart with small files
                "MEDIAINDEX_PART_SIZE_BYTES": str(5 * MiB),
            }
            deployment = Deployment(synth, world, extra, recorder, batch)

            def encode(payload: dict[str, Any]) -> dict[str, Any]:
                with deployment.running("encoder"):
                    answer: dict[str, Any] = encoder_handler.handler(payload, CTX)
                return answer

            recorder.answer_invoke = encode
            drive(deployment, runtime, clip, media_url, receiver, queue_url)
            assert sorted(batch.terminated) == ["job-mediaindex-cpu", "job-mediaindex-gpu"]
        finally:
            for hook in hooks:
                botocore.handlers.BUILTIN_HANDLERS.remove(hook)
            runtime.close()

    needs: dict[str, dict[Need, set[str]]] = {fn: defaultdict(set) for fn in ROLES}
    for fn, calls in recorder.calls.items():
        for operation, params in calls:
            assert operation in OPERATIONS, f"{fn} calls {operation}: add it to the reviewed table"
            for need in OPERATIONS[operation](params):
                needs[fn][need].add(operation)
    return Recorded(needs, world)


# ---- the checks ----------------------------------------------------------------------------------
def test_the_functions_were_driven(recorded: Recorded) -> None:
    operations = {fn: {op for ops in needs.values() for op in ops} for fn, needs in recorded.needs.items()}
    assert "lambda.Invoke" in operations["api"] and "es.POST" in operations["api"]
    assert {"sfn.StartExecution", "secrets-manager.GetSecretValue"} <= operations["api"]
    assert "s3.DeleteObject" in operations["pipeline_events"]  # save_original=false
    assert "es.POST" in operations["batch_ml"]  # the embedding step wrote the search index
    # GPU steps went through batches: manifests written and read back, jobs submitted, tokens
    # kept alive and failed by the batcher, settled by the ml jobs
    assert {"s3.PutObject", "s3.GetObject", "batch.SubmitJob"} <= operations["gpu_batcher"]
    assert {"sfn.SendTaskHeartbeat", "sfn.SendTaskFailure"} <= operations["gpu_batcher"]
    assert {"s3.GetObject", "sfn.SendTaskSuccess", "sfn.SendTaskFailure"} <= operations["batch_ml"]
    assert operations["encoder"] == set()  # models only: the encoder calls no AWS service
    assert {"kms.Encrypt", "sqs.SendMessage"} <= operations["api"]  # a webhook made, a redelivery
    assert "sqs.SendMessage" in operations["pipeline_events"]  # a settled task's deliveries
    assert {"kms.Decrypt", "sqs.SendMessage"} <= operations["webhook_delivery"]  # a failed attempt requeued
    assert {"sfn.StopExecution", "batch.TerminateJob", "sqs.SendMessage", "s3.DeleteObject"} <= operations[
        "reconcile"
    ]
    assert {"dynamodb.BatchWriteItem", "s3.DeleteObjects"} <= operations["reconcile"]  # the purge job


@pytest.mark.parametrize("fn", list(ROLES))
def test_every_call_is_granted_to_the_functions_role(fn: str, synth: Synth, recorded: Recorded) -> None:
    statements = role_statements(synth, ROLES[fn](synth.stack), recorded.world)
    denied = sorted(
        f"{need.action} on {need.resource} {dict(need.context) or ''} (by {', '.join(sorted(ops))})"
        for need, ops in recorded.needs[fn].items()
        if not any(s.allows(a, r, need) for s in statements for a in s.actions for r in s.resources)
    )
    assert denied == [], "\n".join(denied)


@pytest.mark.parametrize("fn", list(ROLES))
def test_the_functions_role_grants_nothing_its_calls_do_not_need(
    fn: str, synth: Synth, recorded: Recorded
) -> None:
    unused = sorted(
        f"{action} on {resource}"
        for s in role_statements(synth, ROLES[fn](synth.stack), recorded.world)
        for action in s.actions
        for resource in s.resources
        if (fn, action) not in UNRECORDED
        and ("*", action) not in UNRECORDED
        and not any(s.allows(action, resource, need) for need in recorded.needs[fn])
    )
    assert unused == [], "\n".join(unused)


# The roles of code that runs beside hostile media or event payloads write only their own kinds
# of item: none may mint an API key, take a tenant name or forge an idempotent answer.
PIPELINE_ROLES = ["batch_media", "batch_ml", "upload_event", "pipeline_events", "webhook_delivery"]
FOREIGN_ITEMS = ["APIKEY#0123abcd", "TENANTNAME#acme", "IDEMPOTENCY#ten_1#key", "RATE#ten_1"]
WRITES = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]


def _table_arn(recorded: Recorded) -> str:
    return next(
        n.resource for needs in recorded.needs.values() for n in needs if n.action == "dynamodb:PutItem"
    )


def _may_write(statements: list[Statement], action: str, table: str, pk: str) -> bool:
    need = Need(action, table, (("dynamodb:LeadingKeys", pk),))
    return any(s.allows(a, r, need) for s in statements for a in s.actions for r in s.resources)


@pytest.mark.parametrize("fn", PIPELINE_ROLES)
def test_a_pipeline_role_cannot_write_keys_names_or_idempotent_answers(
    fn: str, synth: Synth, recorded: Recorded
) -> None:
    statements = role_statements(synth, ROLES[fn](synth.stack), recorded.world)
    table = _table_arn(recorded)
    allowed = [(a, pk) for a in WRITES for pk in FOREIGN_ITEMS if _may_write(statements, a, table, pk)]
    assert allowed == []
    # while it still writes what it must (the check above is not vacuous)
    assert _may_write(statements, "dynamodb:PutItem", table, "ASSET#ast_1") or fn == "webhook_delivery"
    assert _may_write(statements, "dynamodb:PutItem", table, "TENANT#ten_1") or fn == "upload_event"


def test_the_api_role_still_writes_keys(synth: Synth, recorded: Recorded) -> None:
    statements = role_statements(synth, ROLES["api"](synth.stack), recorded.world)
    assert _may_write(statements, "dynamodb:PutItem", _table_arn(recorded), "APIKEY#0123abcd")
