"""Re-indexing end to end on both runtimes, with speech the test makes itself: a new generation is
built with another Whisper model while search keeps answering from the old one, then swapped in;
cancelled and failed re-indexes leave the index as it was; nothing of an old generation remains."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from starlette.testclient import TestClient

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.domain.search import search_key
from mediaindex.ports.search import SearchFilter
from tests import mediagen
from tests.apiclient import Api, error_code
from tests.aws_runtime import REGION, build_aws_test_services
from tests.functional.conftest import BASE_URL, make_settings

pytestmark = pytest.mark.slow

SPEECH = [
    ("ferry.wav", "the ferry leaves the harbour at seven in the morning"),
    ("flour.wav", "add two cups of flour and stir the batter slowly"),
    ("rain.wav", "heavy rain is expected across the northern mountains tonight"),
]


@pytest.fixture(params=["local", pytest.param("aws", marks=pytest.mark.aws)])
def runtime_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime(
    request: pytest.FixtureRequest, runtime_name: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """Both runtimes with their pipeline in this process (AWS: DynamoDB, S3, SQS and KMS under moto)
    and webhooks on, so `index.reindexed` is recorded."""
    # A test of many assets transcribes them with the small model: the re-index is what it tests.
    fast = {"whisper_model": "tiny.en"} if request.node.get_closest_marker("many_assets") else {}
    if runtime_name == "local":
        local = build_local(make_settings(data_dir, allow_private_urls=True, **fast))
        yield local
        local.close()
        return
    with mock_aws():
        key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
        queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="mi-webhooks")["QueueUrl"]
        monkeypatch.setenv("MEDIAINDEX_WEBHOOK_QUEUE_URL", queue)
        monkeypatch.setenv("MEDIAINDEX_WEBHOOK_KMS_KEY_ID", key_id)
        aws = build_aws_test_services(data_dir, orchestrator="inprocess", allow_private_urls=True, **fast)
        try:
            yield aws
        finally:
            aws.close()


class TenantApi(Api):
    tenant_id: str


@pytest.fixture
def api(runtime: Runtime) -> Iterator[TenantApi]:
    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
        tenant, _, raw = runtime.services.keys.create_key("acme")
        api = TenantApi(client, raw)
        api.tenant_id = tenant.id
        yield api


def _pipeline(runtime: Runtime) -> Callable[[], int]:
    assert runtime.executor is not None
    pool = runtime.executor.pool
    return lambda: int(pool.run_until_idle())


def _search(api: TenantApi, index_id: str, text: str) -> dict[str, Any]:
    return dict(api.ok("POST", "/v1/search", json={"index_id": index_id, "query_text": text}))


def _indexed(
    api: TenantApi, runtime: Runtime, tmp_path: Path, clips: list[tuple[str, str]]
) -> dict[str, Any]:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg and espeak-ng are needed")
    index = api.index("talks", default_features=["transcription", "embedding"])
    ids = {}
    for name, text in clips:
        wav = mediagen.speech_wav(tmp_path / name, text, lead_silence_s=0.5)
        ids[name] = api.upload(index["id"], name, wav.read_bytes())["id"]
    _pipeline(runtime)()
    return {"index": index, "ids": ids}


def _docs_under(runtime: Runtime, tenant_id: str, key: str) -> int:
    """The documents under one search key, found by their vectors (k-NN finds every one); those
    its words find are among them (a key dropped keeps neither)."""
    flt = SearchFilter(tenant_id=tenant_id, index_id=key)
    by_words = runtime.search_index.text(flt, query="the harbour flour rain morning", k=100)
    probe = [1.0] + [0.0] * 383  # MiniLM's 384 dimensions
    by_vector = runtime.search_index.knn(
        flt, modality="transcription", model_id="sentence-transformers/all-MiniLM-L6-v2", vector=probe, k=100
    )
    assert {h.segment_id for h in by_words} <= {h.segment_id for h in by_vector}, (by_words, by_vector)
    return len(by_vector)


def test_a_reindex_swaps_in_another_whisper_model_and_drops_the_old_generation(
    api: TenantApi, runtime: Runtime, tmp_path: Path
) -> None:
    world = _indexed(api, runtime, tmp_path, SPEECH)
    index_id, rain = world["index"]["id"], world["ids"]["rain.wav"]
    tenant = api.tenant_id
    before = _search(api, index_id, "is heavy rain expected in the mountains tonight")
    assert before["data"][0]["asset_id"] == rain
    assert before["generation"] == 1 and before["models"]["transcription"] == "base"

    hook = api.ok(
        "POST", "/v1/webhooks", 201, json={"url": "http://127.0.0.1:9/h", "events": ["index.reindexed"]}
    )
    started = api.ok(
        "POST", f"/v1/indexes/{index_id}/reindex", 202, json={"models": {"transcription": "tiny.en"}}
    )
    assert started["generation"] == 1
    assert started["reindex"]["state"] == "running" and started["reindex"]["generation"] == 2
    assert started["reindex"]["models"] == {"transcription": "tiny.en"}
    # Nothing is rebuilt yet: search answers from generation 1, and a second re-index waits its turn.
    during = _search(api, index_id, "is heavy rain expected in the mountains tonight")
    assert during["generation"] == 1 and during["data"][0]["asset_id"] == rain
    second = api.call("POST", f"/v1/indexes/{index_id}/reindex", json={})
    assert second.status_code == 409 and error_code(second) == "reindex_running"

    _pipeline(runtime)()
    done = api.ok("GET", f"/v1/indexes/{index_id}")
    assert done["generation"] == 2 and done["models"] == {"transcription": "tiny.en"}
    assert done["reindex"]["state"] == "completed" and done["reindex"]["swapped"] is True
    assert done["reindex"]["assets_done"] == len(SPEECH) and done["reindex"]["assets_failed"] == 0
    after = _search(api, index_id, "is heavy rain expected in the mountains tonight")
    assert after["generation"] == 2 and after["models"]["transcription"] == "tiny.en"
    assert after["data"][0]["asset_id"] == rain and after["data"][0]["generation"] == 2
    transcript = api.ok("GET", f"/v1/assets/{rain}/transcript")
    assert (
        transcript["model_id"] == "faster-whisper/tiny.en" and "rain" in str(transcript["segments"]).lower()
    )
    # The asset never looked busy: a re-index builds beside it.
    asset = api.ok("GET", f"/v1/assets/{rain}")
    assert asset["status"] == "ready" and asset["features"]["embedding"]["state"] == "completed"
    # No document of generation 1 is left; every one is under generation 2.
    assert _docs_under(runtime, tenant, search_key(index_id, 1)) == 0
    assert _docs_under(runtime, tenant, search_key(index_id, 2)) >= len(SPEECH)
    deliveries = api.ok("GET", f"/v1/webhooks/{hook['id']}/deliveries")["data"]
    assert [d["event"] for d in deliveries] == ["index.reindexed"]


def test_a_cancelled_reindex_leaves_the_index_as_it_was(
    api: TenantApi, runtime: Runtime, tmp_path: Path
) -> None:
    world = _indexed(api, runtime, tmp_path, SPEECH[:2])
    index_id = world["index"]["id"]
    tenant = api.tenant_id
    api.ok("POST", f"/v1/indexes/{index_id}/reindex", 202, json={"models": {"transcription": "tiny.en"}})
    cancelled = api.ok("POST", f"/v1/indexes/{index_id}/reindex/cancel")
    assert (
        cancelled["reindex"]["state"] == "cancelled"
        and cancelled["reindex"]["error"]["code"] == "reindex_cancelled"
    )
    _pipeline(runtime)()  # the cancelled tasks run nothing
    index = api.ok("GET", f"/v1/indexes/{index_id}")
    assert index["generation"] == 1 and index["reindex"]["state"] == "cancelled"
    assert _docs_under(runtime, tenant, search_key(index_id, 2)) == 0
    hits = _search(api, index_id, "add flour to the batter")
    assert hits["generation"] == 1 and hits["data"][0]["asset_id"] == world["ids"]["flour.wav"]
    again = api.call("POST", f"/v1/indexes/{index_id}/reindex/cancel")
    assert again.status_code == 409 and error_code(again) == "reindex_not_running"
    # The next re-index takes a number never used: nothing of the cancelled one can pass for it.
    nxt = api.ok("POST", f"/v1/indexes/{index_id}/reindex", 202, json={})
    assert nxt["reindex"]["generation"] == 3


def test_requests_a_deployment_cannot_serve_are_refused(api: TenantApi, runtime: Runtime) -> None:
    index = api.index("empty")
    bad = api.call(
        "POST", f"/v1/indexes/{index['id']}/reindex", json={"models": {"transcription": "huge-v9"}}
    )
    assert bad.status_code == 400 and error_code(bad) == "model_not_available"
    unknown = api.call("POST", f"/v1/indexes/{index['id']}/reindex", json={"models": {"whisper": "base"}})
    assert unknown.status_code in (400, 422)
    missing = api.call("POST", "/v1/indexes/idx_01j9zq4m3v8c2k7r5t6w0y1x2a/reindex", json={})
    assert missing.status_code == 404 and error_code(missing) == "index_not_found"
    # An empty index swaps at once.
    done = api.ok("POST", f"/v1/indexes/{index['id']}/reindex", 202, json={})
    assert done["generation"] == 2 and done["reindex"]["state"] == "completed"


SENTENCES = [
    "the ferry leaves the harbour at seven in the morning",
    "heavy rain is expected across the northern mountains tonight",
    "add two cups of flour and stir the batter slowly",
    "the library opens its doors at nine on saturday",
    "our team won the football match in the final minute",
]


@pytest.mark.many_assets
# A hundred assets through moto take minutes: the tests above cover the AWS runtime's re-index.
@pytest.mark.parametrize("runtime_name", ["local"])
def test_searches_during_a_reindex_of_a_hundred_assets_never_fail_nor_come_back_empty(
    api: TenantApi, runtime: Runtime, tmp_path: Path
) -> None:
    count = 100
    clips = [(f"clip{n:03d}.wav", SENTENCES[n % len(SENTENCES)]) for n in range(count)]
    world = _indexed(api, runtime, tmp_path, clips)
    index_id = world["index"]["id"]
    assert api.ok("GET", f"/v1/indexes/{index_id}")["asset_count"] == count
    api.ok("POST", f"/v1/indexes/{index_id}/reindex", 202, json={})

    worker = threading.Thread(target=_pipeline(runtime))
    worker.start()
    answers: list[dict[str, Any]] = []
    while worker.is_alive() or not answers:
        resp = api.call(
            "POST", "/v1/search", json={"index_id": index_id, "query_text": "rain in the mountains"}
        )
        assert resp.status_code == 200, resp.text
        answers.append(resp.json())
        assert answers[-1]["data"], (len(answers), answers[-1])
    worker.join()

    index = api.ok("GET", f"/v1/indexes/{index_id}")
    assert index["generation"] == 2 and index["reindex"]["state"] == "completed", index["reindex"]
    assert index["reindex"]["assets_done"] == count
    final = _search(api, index_id, "rain in the mountains")
    assert final["generation"] == 2 and {h["generation"] for h in final["data"]} == {2}
    assert _docs_under(runtime, api.tenant_id, search_key(index_id, 1)) == 0
    assert _docs_under(runtime, api.tenant_id, search_key(index_id, 2)) > 0
    # Searches ran on both sides of the swap.
    assert {a["generation"] for a in answers} >= {1}


def test_a_reindex_whose_rebuild_fails_keeps_the_old_generation(
    api: TenantApi, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _indexed(api, runtime, tmp_path, SPEECH[2:])
    index_id, rain = world["index"]["id"], world["ids"]["rain.wav"]
    # Offered by the settings (as an AWS API offers what its ML image carries) but not loadable here.
    runtime.services.reindex._offered = lambda: ["base", "missing-model"]  # type: ignore[method-assign]
    # A rebuild never reads the original whole again: probe settled it at ingest.
    from mediaindex.pipeline.steps import probe

    probed: list[str] = []
    monkeypatch.setattr(probe, "run", lambda ctx: probed.append(ctx.asset.id))
    api.ok(
        "POST", f"/v1/indexes/{index_id}/reindex", 202, json={"models": {"transcription": "missing-model"}}
    )
    _pipeline(runtime)()
    index = api.ok("GET", f"/v1/indexes/{index_id}")
    assert index["generation"] == 1 and index["models"] == {"transcription": "base"}
    assert index["reindex"]["state"] == "failed" and index["reindex"]["assets_failed"] == 1
    assert index["reindex"]["error"]["code"] == "reindex_failed"
    assert probed == []
    assert _docs_under(runtime, api.tenant_id, search_key(index_id, 2)) == 0
    hits = _search(api, index_id, "is heavy rain expected in the mountains tonight")
    assert hits["generation"] == 1 and hits["data"][0]["asset_id"] == rain
    # The asset itself is untouched: ready, no error, its transcript from the model it was made with.
    asset = api.ok("GET", f"/v1/assets/{rain}")
    assert asset["status"] == "ready" and asset["error"] is None
    assert asset["features"]["transcription"]["state"] == "completed"
    assert api.ok("GET", f"/v1/assets/{rain}/transcript")["model_id"] == "faster-whisper/base"


def test_an_embedding_that_outlives_a_swap_is_built_again_for_the_new_generation(
    api: TenantApi, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the driver cannot close alone: an upload's embedding starts on generation 1 and a
    swap lands before it writes. The runner notices and builds it for generation 2."""
    from mediaindex.pipeline.steps import embedding

    index = api.index("talks", default_features=["transcription", "embedding"])
    index_id = index["id"]
    original = embedding.run
    calls: list[str] = []

    def swap_while_running(ctx: Any) -> Any:
        calls.append(ctx.search_index_id)
        result = original(ctx)
        if len(calls) == 1:  # a re-index swapped meanwhile (as `_swap` writes it)
            stored = runtime.stores.indexes.get(api.tenant_id, index_id)
            assert stored is not None
            stored.generation = stored.generations = 2
            runtime.stores.indexes.update(stored)
        return result

    monkeypatch.setattr(embedding, "run", swap_while_running)
    wav = mediagen.speech_wav(tmp_path / "rain.wav", SPEECH[2][1], lead_silence_s=0.5)
    rain = api.upload(index_id, "rain.wav", wav.read_bytes())["id"]
    _pipeline(runtime)()
    assert calls == [index_id, search_key(index_id, 2)]
    assert _docs_under(runtime, api.tenant_id, search_key(index_id, 1)) == 0
    assert _docs_under(runtime, api.tenant_id, search_key(index_id, 2)) == 1
    hits = _search(api, index_id, "is heavy rain expected in the mountains tonight")
    assert hits["generation"] == 2 and hits["data"][0]["asset_id"] == rain


def test_changes_to_an_index_land_while_its_reindex_writes_the_same_row(
    api: TenantApi, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver writes the index row as it goes: a rename or a delete that loses that race is
    applied again to what the driver wrote, never answered 409."""
    index = api.index("talks")
    started = api.ok("POST", f"/v1/indexes/{index['id']}/reindex", 202)  # no body: rebuild as is
    assert started["generation"] == 2  # an empty index swaps at once
    repo = runtime.stores.indexes
    real_update = repo.update
    raced: list[str] = []

    def driver_writes_first(changed: Any) -> Any:
        if not raced:  # the driver's write lands between this request's read and its write
            raced.append(changed.id)
            stored = repo.get(changed.tenant_id, changed.id)
            real_update(stored)
        return real_update(changed)

    monkeypatch.setattr(repo, "update", driver_writes_first)
    renamed = api.ok("PATCH", f"/v1/indexes/{index['id']}", json={"name": "talks 2"})
    assert renamed["name"] == "talks 2" and raced == [index["id"]]
    raced.clear()
    api.ok("DELETE", f"/v1/indexes/{index['id']}", 202)
    assert raced == [index["id"]]
    gone = api.call("GET", f"/v1/indexes/{index['id']}")
    assert gone.status_code == 404 and error_code(gone) == "index_not_found"


def test_a_search_backend_outage_mid_reindex_fails_no_request_and_the_next_read_resumes(
    api: TenantApi, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mediaindex.domain.errors import UnavailableError

    index = api.index("empty")
    down = [True]
    real = runtime.search_index.make_visible

    def flaky(key: str) -> None:
        if down[0]:
            raise UnavailableError("search index unreachable")
        real(key)

    monkeypatch.setattr(runtime.search_index, "make_visible", flaky)
    started = api.ok("POST", f"/v1/indexes/{index['id']}/reindex", 202, json={})
    assert started["generation"] == 1 and started["reindex"]["state"] == "running"
    assert api.ok("GET", f"/v1/indexes/{index['id']}")["reindex"]["state"] == "running"  # still down
    down[0] = False
    resumed = api.ok("GET", f"/v1/indexes/{index['id']}")
    assert resumed["generation"] == 2 and resumed["reindex"]["state"] == "completed"
