"""The generated state machine under FAITHFUL checkers (moto's Step Functions skips the checks that
matter here: tests/functional/test_statemachine.py runs it there, leniently).

- `asl-validator` (npm) validates every definition the generator can make, paths and ARNs included.
- `aws-local-stepfunctions` (npm) executes the deployed definition as Step Functions would, with
  strict JSONPath (a read of a missing path fails with States.Runtime, which no Catch catches).
  tests/asl/run.mjs routes each Batch task state to the real Batch entrypoint
  (`python -m functions.batch_step.main ...`, its exit status deciding the job's fate) and each
  Lambda task state to the real events handler (`functions.pipeline_events.handler.process`), both
  against a moto server holding the table and bucket, with real media (probe, proxy, preview,
  transcription and embedding really run). A plan makes chosen Batch jobs crash or time out, or
  chosen reports fail, as Batch and Lambda would.
- A sweep runs every feature subset, with and without a source URL, against every step failing
  (crash, timeout, its report lost), with stubbed tasks: each must end in task_finished, once.

Checked per case: how the execution ended, task_finished ran exactly once (and last), which features
were reported failed, and the task's feature states in DynamoDB (read through the repositories).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mediaindex.adapters.aws.state_machine import definition
from mediaindex.adapters.aws.state_machine_tasks import GpuBatching
from mediaindex.adapters.aws.stepfunctions import execution_arn
from mediaindex.bootstrap import Runtime
from mediaindex.domain.models import Feature, FeatureStatus, TaskKind, TaskState
from mediaindex.pipeline.spec import STEP_BY_NAME, STEP_FOR_FEATURE, STEPS, StepSpec
from tests.aws_runtime import REGION, build_aws_test_services
from tests.moto_server import moto_server

pytestmark = [pytest.mark.aws, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "tests" / "asl"
RUN = ASL / "run.mjs"
VALIDATOR = ASL / "node_modules" / "asl-validator" / "dist" / "bin" / "asl-validator.js"
ACCOUNT = "123456789012"
ARNS: dict[str, Any] = {
    "cpu_queue_arn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/mediaindex-cpu",
    "gpu_queue_arn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/mediaindex-gpu",
    "job_definitions": {
        "media": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/mediaindex-media:1",
        "ml": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/mediaindex-ml:1",
    },
    "events_function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mediaindex-pipeline-events",
}
GPU_BATCHING = GpuBatching(f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/mediaindex-gpu-work", 16, 20)
# What infra deploys (default retry pauses, queue wait, GPU steps batched); the harness overrides
# only the pauses.
DEPLOYED = definition(STEPS, **ARNS, gpu_batching=GPU_BATCHING)
FEATURES = [str(f) for f in Feature]
COMPLETED, FAILED, NA = FeatureStatus.COMPLETED, FeatureStatus.FAILED, FeatureStatus.NA


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("node is not installed: the faithful Step Functions checks run on Node (CI has it)")
    if not (ASL / "node_modules" / "aws-local-stepfunctions").is_dir() or not VALIDATOR.is_file():
        pytest.fail("tests/asl/node_modules is missing or incomplete: run `make deps-node`")
    return exe


def harness(
    node: str,
    tmp: Path,
    doc: dict[str, Any],
    runs: list[dict[str, Any]],
    *,
    stub: bool = False,
    env: dict[str, str] | None = None,
    concurrency: int = 1,
) -> list[dict[str, Any]]:
    request = {
        "definition": doc,
        "runs": runs,
        "stub": stub,
        "concurrency": concurrency,
        "retry_interval_ms": 0,
        "python": sys.executable,
        "cwd": str(ROOT),
        "env": env or {},
    }
    path = tmp / f"request-{next(_requests)}.json"
    path.write_text(json.dumps(request))
    proc = subprocess.run(
        [node, str(RUN), str(path)],
        capture_output=True,
        text=True,
        timeout=480,  # both rounds of real cases, on a busy machine
        cwd=ASL,
        env={**os.environ, "AWS_REGION": REGION},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results: list[dict[str, Any]] = json.loads(proc.stdout)["results"]
    return results


_requests = itertools.count()


def describe(result: dict[str, Any]) -> str:
    """What a failed assertion shows: how it ended, and every call with its log tail."""
    lines = [f"status {result['status']} {result.get('error') or ''}", *result["problems"]]
    for c in result["calls"]:
        what = c.get("step") or f"{c['payload'].get('action')} {c['payload'].get('feature', '')}"
        took = f" ({c['ms'] / 1000:.1f} s)" if "ms" in c else ""
        lines.append(f"  {c['state']!r}: {what} -> {c.get('result')}{took}")
        if c.get("log"):
            lines.append("    " + c["log"][-1500:].replace("\n", "\n    "))
    lines.append("  states: " + " > ".join(result["states"]))
    return "\n".join(lines)


def batch_steps(result: dict[str, Any]) -> list[str]:
    return [c["step"] for c in result["calls"] if c["kind"] == "batch"]


def reports(result: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [c for c in result["calls"] if c["kind"] == "lambda" and c["payload"]["action"] == action]


def assert_finished_once(result: dict[str, Any]) -> None:
    finished = reports(result, "task_finished")
    assert [c["result"] for c in finished] == ["ok"], describe(result)
    lambdas = [c for c in result["calls"] if c["kind"] == "lambda"]
    assert lambdas[-1] is finished[0], describe(result)


# ---- asl-validator -----------------------------------------------------------------------------


def _variants() -> dict[str, dict[str, Any]]:
    """Every shape the generator makes: the deployed one, other retry pauses and queue waits, a
    pipeline without fetch, steps without retries."""
    no_fetch = tuple(dataclasses.replace(s, needs=tuple(n for n in s.needs if n != "fetch")) for s in STEPS)
    no_fetch = tuple(s for s in no_fetch if s.name != "fetch")
    single = tuple(dataclasses.replace(s, max_attempts=1) for s in STEPS)
    return {
        "deployed": DEPLOYED,
        "unbatched": definition(STEPS, **ARNS),
        "short-retries": definition(STEPS, **ARNS, retry_interval_s=1, queue_wait_s=60),
        "no-fetch": definition(no_fetch, **ARNS),
        "no-retries": definition(single, **ARNS),
    }


def test_asl_validator_accepts_every_definition_the_generator_makes(node: str, tmp_path: Path) -> None:
    paths = []
    for name, doc in _variants().items():
        (path := tmp_path / f"{name}.json").write_text(json.dumps(doc))
        paths += ["--json-path", str(path)]
    # A control: the checker is not vacuous (a Next to nowhere, a Choice path that is no path).
    broken = json.loads(json.dumps(DEPLOYED))
    broken["States"]["prepare"]["Next"] = "nowhere"
    broken["States"]["source_url given?"]["Choices"][0]["Variable"] = "source_url"
    (bad := tmp_path / "broken.json").write_text(json.dumps(broken))

    ok = subprocess.run([node, str(VALIDATOR), *paths], capture_output=True, text=True, check=False)
    refused = subprocess.run([node, str(VALIDATOR), "--json-path", str(bad)], capture_output=True, text=True)

    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("is valid") == len(_variants())
    assert refused.returncode == 1, refused.stdout + refused.stderr


def test_every_batch_state_has_a_timeout_beyond_its_job_and_every_failure_is_caught() -> None:
    def walk(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, state in states.items():
            yield name, state
            for branch in state.get("Branches", []):
                yield from walk(branch["States"])
            if "ItemProcessor" in state:
                yield from walk(state["ItemProcessor"]["States"])

    for name, state in walk(DEPLOYED["States"]):
        if state["Type"] in ("Task", "Parallel", "Map") and not name.startswith("task finished"):
            assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        if state.get("Resource") == "arn:aws:states:::batch:submitJob.sync":
            job_timeout = state["Parameters"]["Timeout"]["AttemptDurationSeconds"]
            assert job_timeout == STEP_BY_NAME[name].timeout_s
            assert state["TimeoutSeconds"] > job_timeout, name
            assert STEP_BY_NAME[name].compute == "cpu", name  # GPU steps are batched
        if state.get("Resource") == "arn:aws:states:::sqs:sendMessage.waitForTaskToken":
            # Heartbeats cover the gather window and the queue wait; the whole state a full batch.
            step = STEP_BY_NAME[name]
            assert step.compute == "gpu", name
            assert state["HeartbeatSeconds"] > GPU_BATCHING.window_s + 1800, name
            assert state["TimeoutSeconds"] >= step.timeout_s * GPU_BATCHING.max_items, name
            assert state["Parameters"]["QueueUrl"] == GPU_BATCHING.queue_url


# ---- every feature subset, every failure (stubbed tasks) ------------------------------------------


def _expected(features: list[str], url: bool, fail: str | None) -> dict[str, Any]:
    """What the state machine must do, from the spec alone. A failed shared step reports every
    requested feature; a failed feature step reports one feature of its own (the events Lambda
    fails all of that step's features), so `failed` holds features there and steps here."""
    shared = [s.name for s in STEPS if not s.features and (url or not s.url_sources_only)]
    wanted = [STEP_FOR_FEATURE[Feature(f)] for f in features]
    if fail in shared:
        return {"status": "FAILED", "ran": set(shared[: shared.index(fail) + 1]), "failed": set(features)}
    failed: set[str] = set()
    ran = set(shared)
    for step in (s for s in STEPS if s in wanted):
        if any(n in failed for n in step.needs) or step.name == fail:
            failed.add(step.name)
        if not any(n in failed for n in step.needs):
            ran.add(step.name)
    return {"status": "SUCCEEDED", "ran": ran, "failed": failed}


def _attempts(step: StepSpec, mode: str) -> int:
    return 1 if mode == "timeout" else step.max_attempts


def test_every_feature_subset_and_every_failure_ends_in_task_finished_once(node: str, tmp_path: Path) -> None:
    runs: list[dict[str, Any]] = []
    cases: list[tuple[list[str], bool, str | None, str, bool]] = []
    for n in range(len(FEATURES) + 1):
        for subset in itertools.combinations(FEATURES, n):
            features = list(subset)
            for url in (False, True):
                steps = [s.name for s in STEPS if not s.features and (url or not s.url_sources_only)]
                steps += list(dict.fromkeys(STEP_FOR_FEATURE[Feature(f)].name for f in features))
                plans: list[tuple[str | None, str, bool]] = [(None, "", False)]
                plans += [(s, m, lost) for s in steps for m in ("crash", "timeout") for lost in (False, True)]
                for fail, mode, lost in plans:
                    execution_input: dict[str, Any] = {
                        "tenant_id": "ten_1",
                        "task_id": "tsk_1",
                        "asset_id": "ast_1",
                        "features": features,
                    }
                    if url:
                        execution_input["source_url"] = "https://example.com/a.mp4"
                    plan = {"batch": {fail: mode} if fail else {}, "lambda": {}}
                    if lost:  # every failure report fails too (the events Lambda keeps erroring)
                        plan["lambda"] = {"feature_failed": "ValueError"}
                    runs.append({"input": execution_input, "plan": plan})
                    cases.append((features, url, fail, mode, lost))

    results = harness(node, tmp_path, DEPLOYED, runs, stub=True)

    for (wanted, url, fail, mode, lost), result in zip(cases, results, strict=True):
        where = f"features={wanted} url={url} fail={fail} {mode} lost={lost}\n{describe(result)}"
        want = _expected(wanted, url, fail)
        assert result["problems"] == [], where
        assert result["status"] == want["status"], where
        if want["status"] == "FAILED":
            assert result["error"]["name"] == "SharedStepFailed", where
        assert set(batch_steps(result)) == want["ran"], where
        if fail is not None and fail in want["ran"]:
            assert batch_steps(result).count(fail) == _attempts(STEP_BY_NAME[fail], mode), where
        reported = {c["payload"]["feature"] for c in reports(result, "feature_failed")}
        if want["status"] == "SUCCEEDED":
            reported = {STEP_FOR_FEATURE[Feature(f)].name for f in reported}
        assert reported == want["failed"], where
        assert_finished_once(result)


# ---- real entrypoints against moto, real media ---------------------------------------------------
# The cases run in two rounds of concurrent executions (one harness call each; the second holds the
# re-run, which needs the first round's ingest of every feature); each test then checks its case.


@dataclass
class World:
    node: str
    tmp: Path
    runtime: Runtime
    tenant_id: str
    index_id: str
    clip: Path
    env: dict[str, str]


@dataclass
class Case:
    asset_id: str
    task_id: str
    plan: dict[str, Any] = dataclasses.field(default_factory=dict)
    result: dict[str, Any] = dataclasses.field(default_factory=dict)


@pytest.fixture(scope="module")
def world(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from tests import mediagen

    if not mediagen.have_tools():
        pytest.skip("ffmpeg, ffprobe and espeak-ng are needed (make deps installs them)")
    tmp = tmp_path_factory.mktemp("faithful")
    clip = mediagen.talking_video(tmp / "talk.mp4", "the quick brown fox", lead_silence_s=0.5)
    quiet = pytest.MonkeyPatch()
    quiet.setattr(logging.getLogger("werkzeug"), "level", logging.WARNING)  # moto's request log
    servers = contextlib.ExitStack()
    endpoint = servers.enter_context(moto_server())
    runtime = build_aws_test_services(tmp / "api", endpoint_url=endpoint, allow_private_urls=True)
    try:
        tenant, _, _ = runtime.services.keys.create_key("acme")
        index = runtime.services.indexes.create(
            tenant.id, name="clips", description=None, default_features=[], is_sample=False
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MEDIAINDEX_"))}
        env = {
            **base,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "layers"), str(ROOT)]),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MEDIAINDEX_RUNTIME": "aws",
            "MEDIAINDEX_AWS_REGION": REGION,
            "MEDIAINDEX_TABLE_NAME": runtime.settings.table_name,
            "MEDIAINDEX_BUCKET_NAME": runtime.settings.bucket_name,
            "MEDIAINDEX_ALLOW_PRIVATE_URLS": "true",
            "MEDIAINDEX_DATA_DIR": str(tmp / "data" / "events"),  # each case's jobs get their own
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        yield World(node, tmp, runtime, tenant.id, index.id, clip, env)
    finally:
        runtime.close()
        servers.close()
        quiet.undo()


@contextlib.contextmanager
def serving(data: bytes) -> Iterator[str]:
    """A loopback HTTP server answering every GET with `data` (an asset_url to fetch)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/talk.mp4"
    finally:
        server.shutdown()
        server.server_close()


def ingest(world: World, features: list[str], plan: dict[str, Any] | None = None) -> Case:
    """An uploaded clip whose ingest started (an execution in moto)."""
    asset, task = world.runtime.services.assets.create_from_file(
        world.tenant_id,
        path=world.clip,
        index_id=world.index_id,
        name="clip.mp4",
        features=[Feature(f) for f in features],
        save_original=True,
        user_metadata=None,
        content_type="video/mp4",
    )
    return Case(asset.id, task.id, plan or {})


def execute_all(world: World, cases: dict[str, Case]) -> None:
    """Runs the deployed definition once per case, on the input the orchestrator gave the execution
    it started, concurrently; each case's children keep their own data dir (embedded search)."""
    arn = world.runtime.settings.state_machine_arn
    assert arn is not None and world.runtime.aws_clients is not None
    sfn = world.runtime.aws_clients.stepfunctions
    runs = []
    for name, case in cases.items():
        described = sfn.describe_execution(executionArn=execution_arn(arn, case.task_id))
        execution_input = json.loads(described["input"])
        assert execution_input["task_id"] == case.task_id
        env = {"MEDIAINDEX_DATA_DIR": str(world.tmp / "data" / name)}
        runs.append({"input": execution_input, "plan": case.plan, "env": env})
    results = harness(world.node, world.tmp, DEPLOYED, runs, env=world.env, concurrency=3)
    for case, result in zip(cases.values(), results, strict=True):
        case.result = result


@pytest.fixture(scope="module")
def cases(world: World) -> dict[str, Case]:
    first = {f: ingest(world, [f]) for f in FEATURES}
    first["all"] = ingest(world, FEATURES)
    execute_all(world, first)

    # Embedding alone again, once the ingest of every feature stored a transcript.
    rerun = world.runtime.services.tasks.rerun(world.tenant_id, first["all"].asset_id, [Feature.EMBEDDING])
    assert rerun.kind == TaskKind.RERUN
    second = {"rerun": Case(first["all"].asset_id, rerun.id)}
    # Transcription jobs failing on Batch every attempt.
    second["crash"] = ingest(world, FEATURES, {"batch": {"transcription": "crash"}})
    # A render job (proxy and preview) stuck RUNNABLE.
    second["timeout"] = ingest(world, ["proxy", "preview"], {"batch": {"render": "timeout"}})
    # An original gone before probe ran: the real entrypoint exits 1, every attempt.
    second["probe"] = ingest(world, ["proxy", "preview"])
    original = world.runtime.stores.assets.get(world.tenant_id, second["probe"].asset_id)
    assert original is not None and original.upload is not None
    world.runtime.blobs.delete(original.upload.key)
    # Transcription crashing, and the events Lambda failing to record that, every attempt.
    second["lost"] = ingest(
        world,
        ["proxy", "transcription"],
        {
            "batch": {"transcription": "crash"},
            "lambda": {"feature_failed:transcription": "Lambda.ServiceException"},
        },
    )
    with serving(world.clip.read_bytes()) as url:
        asset, task = world.runtime.services.assets.create_from_url(
            world.tenant_id,
            asset_url=url,
            index_id=world.index_id,
            name="clip.mp4",
            features=[Feature.PROXY],
            save_original=True,
            user_metadata=None,
            content_type=None,
            size_bytes=None,
        )
        second["url"] = Case(asset.id, task.id)
        execute_all(world, second)
    return {**first, **second}


def feature_states(world: World, task_id: str) -> dict[str, tuple[FeatureStatus, str | None]]:
    task = world.runtime.stores.tasks.get(world.tenant_id, task_id)
    assert task is not None
    return {str(f): (fs.state, fs.error) for f, fs in task.features.items()}


def task_state(world: World, task_id: str) -> TaskState:
    task = world.runtime.stores.tasks.get(world.tenant_id, task_id)
    assert task is not None
    return task.state


def check(
    world: World,
    case: Case,
    *,
    ran: list[str],
    states: dict[str, tuple[FeatureStatus, str | None]],
    reported: frozenset[str] = frozenset(),
    status: str = "SUCCEEDED",
) -> dict[str, Any]:
    result = case.result
    where = describe(result)
    assert result["problems"] == [], where
    assert result["status"] == status, where
    assert sorted(batch_steps(result)) == sorted(ran), where
    assert {c["payload"]["feature"] for c in reports(result, "feature_failed")} == reported, where
    assert_finished_once(result)
    assert feature_states(world, case.task_id) == states, where
    return result


@pytest.mark.parametrize(
    ("feature", "state"),
    [
        ("proxy", (COMPLETED, None)),
        ("preview", (COMPLETED, None)),
        ("transcription", (COMPLETED, None)),
        # No transcript yet and no CLIP model here: nothing to embed, and it says so.
        ("embedding", (NA, None)),
    ],
)
def test_one_feature_alone(
    world: World, cases: dict[str, Case], feature: str, state: tuple[FeatureStatus, str | None]
) -> None:
    step = STEP_FOR_FEATURE[Feature(feature)].name
    result = check(world, cases[feature], ran=["probe", step], states={feature: state})
    assert {c["result"] for c in result["calls"] if c["kind"] == "batch"} == {"exit 0"}, describe(result)
    assert task_state(world, cases[feature].task_id) == TaskState.COMPLETED


def test_all_features(world: World, cases: dict[str, Case]) -> None:
    result = check(
        world,
        cases["all"],
        ran=["probe", "render", "transcription", "embedding"],
        states=dict.fromkeys(FEATURES, (COMPLETED, None)),
    )
    steps = batch_steps(result)
    # Embedding joins both branches: the transcript and render's keyframes are there before it.
    assert steps.index("transcription") < steps.index("embedding")
    assert steps.index("render") < steps.index("embedding")


def test_a_rerun_of_embedding_alone_reads_the_stored_transcript(world: World, cases: dict[str, Case]) -> None:
    # Its input names no transcription: every path the state machine reads must exist regardless.
    case = cases["rerun"]
    check(world, case, ran=["probe", "embedding"], states={"embedding": (COMPLETED, None)})
    # Text vectors from the first ingest's transcript: completed, not `na` as for a first embedding.
    segments = world.runtime.stores.outputs.list_segments(
        world.tenant_id, case.asset_id, limit=100, cursor=None
    )
    assert any(s.kind == "speech" and s.text for s in segments.data)


def test_a_url_ingest_fetches_first(world: World, cases: dict[str, Case]) -> None:
    case = cases["url"]
    result = check(world, case, ran=["fetch", "probe", "render"], states={"proxy": (COMPLETED, None)})
    assert batch_steps(result)[:2] == ["fetch", "probe"]
    fetched = world.runtime.stores.assets.get(world.tenant_id, case.asset_id)
    assert fetched is not None and fetched.size_bytes == world.clip.stat().st_size


def test_a_step_crashing_every_attempt_fails_its_chain_alone(world: World, cases: dict[str, Case]) -> None:
    # Transcription was tried max_attempts times; embedding (which needs it) never started;
    # proxy and preview completed; only transcription and embedding were reported failed.
    result = check(
        world,
        cases["crash"],
        ran=["probe", "render", *["transcription"] * STEP_BY_NAME["transcription"].max_attempts],
        reported=frozenset({"transcription", "embedding"}),
        states={
            "proxy": (COMPLETED, None),
            "preview": (COMPLETED, None),
            "transcription": (FAILED, "step_failed"),
            "embedding": (FAILED, "upstream_failed"),
        },
    )
    errors = {c["payload"]["feature"]: c["payload"]["error"] for c in reports(result, "feature_failed")}
    # Transcription is a batched GPU step: its batch job failed the item's token.
    assert errors["transcription"]["Error"] == "GpuStepCrashed"
    assert "exit 1" in errors["transcription"]["Cause"]
    assert errors["embedding"]["Error"] == "UpstreamFailed"


def test_a_job_stuck_in_its_queue_times_out_and_is_reported(world: World, cases: dict[str, Case]) -> None:
    result = check(
        world,
        cases["timeout"],
        ran=["probe", "render"],  # a timeout is not retried: the job would queue again
        reported=frozenset({"proxy"}),  # the step's first feature: the events Lambda fails both
        states={"proxy": (FAILED, "step_timeout"), "preview": (FAILED, "step_timeout")},
    )
    assert reports(result, "feature_failed")[0]["payload"]["error"]["Error"] == "States.Timeout"


def test_a_crashing_probe_fails_every_feature_and_the_execution(world: World, cases: dict[str, Case]) -> None:
    case = cases["probe"]
    result = check(
        world,
        case,
        status="FAILED",
        ran=["probe"] * STEP_BY_NAME["probe"].max_attempts,
        reported=frozenset({"proxy", "preview"}),
        states={"proxy": (FAILED, "step_failed"), "preview": (FAILED, "step_failed")},
    )
    assert result["error"] == {
        "name": "SharedStepFailed",
        "message": f"task {case.task_id} failed: States.TaskFailed",
    }
    assert {c["result"] for c in result["calls"] if c["kind"] == "batch"} == {"exit 1"}
    assert task_state(world, case.task_id) == TaskState.FAILED


def test_a_lost_failure_report_leaves_the_feature_to_task_finished(
    world: World, cases: dict[str, Case]
) -> None:
    # The other branch was not disturbed, and task_finished failed the unreported feature.
    result = check(
        world,
        cases["lost"],
        ran=["probe", "render", *["transcription"] * STEP_BY_NAME["transcription"].max_attempts],
        reported=frozenset({"transcription"}),
        states={"proxy": (COMPLETED, None), "transcription": (FAILED, "step_failed")},
    )
    assert all(c["result"] != "ok" for c in reports(result, "feature_failed"))
