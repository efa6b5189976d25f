"""Search relevance on real generated speech, through the API of the local runtime: segments follow
the spoken sentences, overlapping hits merge, and the default threshold tells answers from queries
about nothing in the index. (The full measurement is `make bench`: bench/relevance.)"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from bench.relevance.corpus import Corpus, load_or_build
from bench.relevance.topics import Topic
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.pipeline.sentences import MIN_SENTENCE_S
from tests import mediagen
from tests.apiclient import Api
from tests.functional.conftest import BASE_URL, make_settings
from tests.functional.test_ml import build_tiny_clip

pytestmark = pytest.mark.slow

TOPICS = (
    Topic(
        "lighthouse",
        "mp4",
        "en-us",
        150,
        (
            "The old lighthouse stands on a rock at the mouth of the bay.",
            "Its lamp turns once every ten seconds and can be seen twenty miles away.",
            "A keeper lived in the tower until the light was automated in nineteen eighty.",
            "Today the cottage beside it is a small museum about shipwrecks.",
        ),
    ),
    Topic(
        "tomatoes",
        "wav",
        "en-gb",
        145,
        (
            "Tomato seedlings need a warm windowsill and plenty of light in early spring.",
            "Plant them outside only when there is no more risk of frost.",
            "Pinch out the side shoots so the plant puts its energy into the fruit.",
        ),
    ),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg and espeak-ng are needed")
    root = tmp_path_factory.mktemp("relevance")
    corpus: Corpus = load_or_build(root / "corpus", TOPICS)
    # A CLIP model (tiny, random weights) so that shots get visual vectors that overlap sentences.
    settings = make_settings(root / "data", clip_model_path=build_tiny_clip(root / "clip"))
    runtime = build_local(settings)
    with TestClient(build_app(runtime), base_url=BASE_URL) as client:
        api = Api(client, runtime.services.keys.create_key("acme")[2])
        idx = api.index("talks", default_features=["transcription", "embedding"])
        ids = {f.key: api.upload(idx["id"], f.path.name, f.path.read_bytes())["id"] for f in corpus.files}
        runtime.executor.pool.run_until_idle()
        yield {"api": api, "index": idx["id"], "ids": ids, "corpus": corpus}
    runtime.close()


def _search(w: dict[str, Any], **body: Any) -> list[dict[str, Any]]:
    return list(w["api"].ok("POST", "/v1/search", json={"index_id": w["index"], **body})["data"])


def test_speech_segments_are_the_spoken_sentences(world: dict[str, Any]) -> None:
    for f in world["corpus"].files:
        segs = world["api"].ok("GET", f"/v1/assets/{world['ids'][f.key]}/segments", params={"limit": 100})[
            "data"
        ]
        speech = [s for s in segs if s["kind"] == "speech"]
        # Every sentence's midpoint lies inside exactly one speech segment ...
        for sentence in f.sentences:
            hosts = [s for s in speech if s["start"] <= sentence.midpoint <= s["end"]]
            assert len(hosts) == 1, (sentence.text, speech)
        # ... there are no fragments, speech segments never overlap, and shots carry no text.
        assert all(s["end"] - s["start"] >= MIN_SENTENCE_S for s in speech), speech
        ordered = sorted(speech, key=lambda s: s["start"])
        assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(ordered))
        assert all(s["text"] is None for s in segs if s["kind"] != "speech")
        assert len(speech) >= len(f.sentences) - 1  # at most one pair run together by the recogniser


def test_a_spoken_phrase_answers_with_its_sentence(world: dict[str, Any]) -> None:
    f = world["corpus"].file("lighthouse")
    target = f.sentences[1]  # "Its lamp turns once every ten seconds ..."
    hits = _search(world, query_text="the lamp can be seen twenty miles away")
    top = hits[0]
    assert top["asset_id"] == world["ids"]["lighthouse"]
    assert top["start"] <= target.midpoint <= top["end"], (top, target)
    assert top["score"] >= 0.5


def test_overlapping_hits_of_one_asset_merge_into_one_answer(world: dict[str, Any]) -> None:
    # Threshold 0 returns every candidate, shots (random CLIP) and sentences alike.
    hits = _search(world, query_text="lighthouse keeper tower", threshold=0.0, limit=100)
    by_asset: dict[str, list[dict[str, Any]]] = {}
    for h in hits:
        by_asset.setdefault(h["asset_id"], []).append(h)
    for asset_hits in by_asset.values():
        spans = sorted((h["start"], h["end"]) for h in asset_hits)
        for (s1, e1), (s2, e2) in itertools.pairwise(spans):
            assert e1 <= s2, f"overlapping hits {s1}-{e1} and {s2}-{e2}"
    # The answer keeps the sentence's range and text, not the shot's.
    top = hits[0]
    assert top["text"] and "keeper" in top["text"].lower()


def test_the_default_threshold_drops_queries_about_nothing_here(world: dict[str, Any]) -> None:
    transcripts_only = {"search_options": ["transcription"]}
    for query in ("how to train a puppy to sit", "python list comprehension syntax", "tax deadline"):
        assert _search(world, query_text=query, **transcripts_only) == [], query
    # The same query with threshold 0 still lists candidates: it is the score that drops them.
    assert _search(world, query_text="how to train a puppy to sit", threshold=0.0, **transcripts_only)
    assert (
        _search(world, query_text="when to plant tomatoes outdoors", **transcripts_only)[0]["asset_id"]
        == (world["ids"]["tomatoes"])
    )
