"""The relevance bench's corpus generator and query set: a tiny corpus is really spoken and encoded,
its ground truth is where the speech is, the cache is reused, and the queries hold what they claim."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bench.relevance import corpus as corpus_mod
from bench.relevance import metrics, report, runner
from bench.relevance.corpus import (
    LEAD_S,
    MANIFEST,
    RATE,
    TRAIL_S,
    CorpusError,
    gaps_for,
    load_or_build,
    probe_duration,
    spec_hash,
)
from bench.relevance.queries import QUERIES, TYPES, Query
from bench.relevance.topics import TOPICS, Topic
from mediaindex.samples import have_tools

needs_tools = pytest.mark.skipif(not have_tools(), reason="ffmpeg, ffprobe and espeak-ng are needed")

TINY = (
    Topic("kites", "mp4", "en-us+f3", 175, ("Kites fly on windy days.", "The string must be strong.")),
    Topic("tea", "m4a", "en-gb+m4", 160, ("Boil the kettle first.", "Steep the leaves for three minutes.")),
    Topic("rain", "wav", "en-gb-scotland", 150, ("It rained all night.",)),
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> corpus_mod.Corpus:
    if not have_tools():
        pytest.skip("ffmpeg, ffprobe and espeak-ng are needed")
    return load_or_build(tmp_path_factory.mktemp("cache"), TINY)


def _decoded(path: Path, tmp: Path) -> np.ndarray:
    """The file's audio as 16 kHz mono floats, decoded the way the pipeline's ffmpeg would."""
    out = tmp / f"{path.stem}.decoded.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(path), "-ar", str(RATE), "-ac", "1", str(out)],
        check=True,
    )
    with wave.open(str(out), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0


def _streams(path: Path) -> list[str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return sorted(out.stdout.split())


@needs_tools
def test_each_file_is_in_its_container_with_its_sentences_timed_in_order(tiny: corpus_mod.Corpus) -> None:
    assert [f.key for f in tiny.files] == ["kites", "tea", "rain"]
    assert _streams(tiny.file("kites").path) == ["aac", "h264"]
    assert _streams(tiny.file("tea").path) == ["aac"]
    assert _streams(tiny.file("rain").path) == ["pcm_s16le"]
    for pos, f in enumerate(tiny.files):
        s = f.sentences
        assert s[0].start == pytest.approx(LEAD_S, abs=0.001)
        for (a, b), gap in zip(itertools.pairwise(s), gaps_for(pos, len(s)), strict=True):
            assert a.end - a.start > 0.5  # a spoken sentence, not an empty piece
            assert b.start - a.end == pytest.approx(gap, abs=0.002)
        assert f.duration == pytest.approx(s[-1].end + TRAIL_S, abs=0.1)  # AAC pads a frame or so


@needs_tools
def test_the_truth_is_where_the_speech_is(tiny: corpus_mod.Corpus, tmp_path: Path) -> None:
    """Loud inside each sentence's range, silent in the gaps, in every container (AAC's delay too)."""
    for f in tiny.files:
        audio = _decoded(f.path, tmp_path)
        at = lambda t: int(t * RATE)  # noqa: E731
        quiet = [audio[: at(LEAD_S) - 800]]
        quiet += [audio[at(a.end) + 800 : at(b.start) - 800] for a, b in itertools.pairwise(f.sentences)]
        for s in f.sentences:
            assert _rms(audio[at(s.start) : at(s.end)]) > 0.02, (f.key, s)
            # The speech starts and ends at the edges: the first and last 0.15 s carry sound.
            assert _rms(audio[at(s.start) : at(s.start + 0.15)]) > 0.005, (f.key, s.index, "start")
            assert _rms(audio[at(s.end - 0.15) : at(s.end)]) > 0.005, (f.key, s.index, "end")
        assert all(_rms(q) < 0.003 for q in quiet), (f.key, [_rms(q) for q in quiet])


@needs_tools
def test_a_second_load_reads_the_cache_and_a_changed_spec_builds_anew(
    tiny: corpus_mod.Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {f.key: f.path.stat().st_mtime_ns for f in tiny.files}
    monkeypatch.setattr(corpus_mod, "_build_file", lambda *a: pytest.fail("rebuilt a cached corpus"))
    again = load_or_build(tiny.root.parent, TINY)
    assert again == tiny
    assert {f.key: f.path.stat().st_mtime_ns for f in again.files} == before
    changed = (TINY[0], Topic("tea", "m4a", "en-gb+m4", 161, TINY[1].sentences))
    assert spec_hash(changed) != tiny.spec_hash == spec_hash(TINY) == tiny.root.name


@needs_tools
def test_a_run_that_loses_the_race_takes_the_corpus_the_other_run_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = TINY[2:]
    real_build = corpus_mod._build_file
    calls = []

    def build_while_another_run_finishes(work: Path, position: int, topic: Topic) -> corpus_mod.CorpusFile:
        calls.append(topic.key)
        if len(calls) == 1:
            load_or_build(tmp_path, one)  # the other run, finishing first
        return real_build(work, position, topic)

    monkeypatch.setattr(corpus_mod, "_build_file", build_while_another_run_finishes)
    got = load_or_build(tmp_path, one)
    assert got.root == tmp_path / spec_hash(one) and got.files[0].path.exists()
    assert [p.name for p in tmp_path.iterdir()] == [spec_hash(one)]  # the loser's temp folder is gone


@needs_tools
def test_a_cache_folder_in_the_way_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    one = TINY[2:]
    (tmp_path / spec_hash(one) / "junk").mkdir(parents=True)
    with pytest.raises(CorpusError, match="delete it to rebuild"):
        load_or_build(tmp_path, one)


@needs_tools
def test_a_cached_corpus_missing_a_file_is_an_error(tiny: corpus_mod.Corpus, tmp_path: Path) -> None:
    copy = tmp_path / tiny.root.name
    copy.mkdir()
    (copy / MANIFEST).write_text((tiny.root / MANIFEST).read_text())
    with pytest.raises(CorpusError, match=r"lacks kites\.mp4, tea\.m4a, rain\.wav"):
        load_or_build(tmp_path, TINY)


@needs_tools
def test_generation_failures_are_corpus_errors(tmp_path: Path) -> None:
    for voice in ("no-such-voice", "en-us+nosuchvariant"):
        with pytest.raises(CorpusError, match=f"unknown espeak-ng voice {re.escape(voice)}"):
            load_or_build(tmp_path, (Topic("x", "wav", voice, 150, ("Hello there.",)),))
    with pytest.raises(CorpusError, match="unknown container 'ogg'"):
        load_or_build(tmp_path, (Topic("x", "ogg", "en-us", 150, ("Hello there.",)),))
    (tmp_path / "not-media.wav").write_text("hello")
    with pytest.raises(CorpusError, match="ffprobe"):
        probe_duration(tmp_path / "not-media.wav")
    assert [p.name for p in tmp_path.iterdir()] == ["not-media.wav"]  # no half-built corpus left


def test_without_the_tools_the_corpus_cannot_be_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_mod, "have_tools", lambda: False)
    with pytest.raises(CorpusError, match="espeak-ng, ffmpeg and ffprobe are needed"):
        load_or_build(tmp_path, TINY)


# The query set

# Function words: what remains of a query after them is its content.
STOPWORDS = frozenset(
    """
    a an the of to in on at for from by with and or but not no is are be it its this that these those
    so as than too very what why how when where which who while till until before after into over under
    up down out off your you we our their they them he she his her can could should would will do does
    isn't all each every any some most much more less only about just get
    """.split()  # noqa: SIM905 - a word list reads best as words
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _stem(word: str) -> str:
    return re.sub(r"(ing|ed|ly|es|s|e)$", "", word.strip("'")) or word  # crude, and both sides alike


def _content(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w not in STOPWORDS}


def test_queries_point_at_real_sentences_and_alternate_splits() -> None:
    topics = {t.key: t for t in TOPICS}
    assert 70 <= len(QUERIES) <= 90 and len({q.id for q in QUERIES}) == len(QUERIES)
    for kind in TYPES:
        of_kind = [q for q in QUERIES if q.type == kind]
        assert len(of_kind) >= 10, kind
        assert [q.split for q in of_kind] == ["dev", "test"] * (len(of_kind) // 2) + ["dev"] * (
            len(of_kind) % 2
        )
    for q in QUERIES:
        if q.type == "off_corpus":
            assert q.file is None and q.sentence is None
        elif q.type == "topic":
            assert q.file in topics and q.sentence is None
        else:
            assert q.file in topics and q.sentence is not None
            assert 0 <= q.sentence < len(topics[q.file].sentences), q


def test_exact_queries_are_verbatim_and_paraphrases_share_no_content_word() -> None:
    topics = {t.key: t for t in TOPICS}
    for q in QUERIES:
        if q.file is None or q.sentence is None:
            continue
        sentence = topics[q.file].sentences[q.sentence]
        if q.type == "exact":
            assert 3 <= len(_words(q.text)) <= 7, q
            assert " ".join(_words(q.text)) in " ".join(_words(sentence)), q
        if q.type == "paraphrase":
            assert not _content(q.text) & _content(sentence), (q.id, _content(q.text) & _content(sentence))
    # The check itself catches a shared word under another inflection.
    assert _content("fixing flat tires") & _content("To fix a flat tire, first") == {"fix", "flat", "tir"}


def test_off_corpus_queries_share_no_content_word_with_the_corpus_they_are_off() -> None:
    """A safeguard on the query set, not a claim about meaning: an off-corpus query may brush a word
    ("battery", "water") but must not be answerable by one file's vocabulary."""
    for q in QUERIES:
        if q.type != "off_corpus":
            continue
        words = _content(q.text)
        for t in TOPICS:
            vocab = _content(" ".join(t.sentences))
            assert len(words & vocab) <= 1, (q.text, t.key, words & vocab)


# Scoring (bench/relevance/metrics.py, report.py) over hand-made runs


def _hit(asset: str, start: float, end: float, score: float = 0.9) -> dict[str, Any]:
    return {"asset_id": asset, "segment_id": f"{asset}-{start}", "start": start, "end": end, "score": score}


def _row(
    kind: str, split: str, asset: str | None, span: tuple[float, float] | None, **lists: Any
) -> dict[str, Any]:
    start, end = span if span else (None, None)
    row: dict[str, Any] = {"id": f"{kind}-{split}", "type": kind, "split": split}
    row["truth"] = {"asset_id": asset, "start": start, "end": end}
    return row | {"hybrid": [], "bm25": [], "vector": []} | lists


def _run(rows: list[dict[str, Any]]) -> dict[str, Any]:
    meta = {"corpus_files": 2, "corpus_duration_s": 9.0, "corpus_hash": "h", "whisper_model": "tiny.en"}
    return {"meta": meta | {"ingest_s": 1.0, "query_s": 0.1, "loadavg": [0.1, 0.1, 0.1]}, "queries": rows}


def test_top1_and_midpoint_need_the_right_asset_and_the_midpoint_inside_the_top_hit() -> None:
    right = _row("exact", "dev", "a", (2.0, 4.0), hybrid=[_hit("a", 2.5, 3.5), _hit("b", 0, 9)])
    off_time = _row("exact", "dev", "a", (2.0, 4.0), hybrid=[_hit("a", 3.2, 6.0)])
    wrong_asset = _row("exact", "dev", "a", (2.0, 4.0), hybrid=[_hit("b", 2.0, 4.0)], bm25=[_hit("a", 2, 4)])
    assert [metrics.top1_correct(r, "hybrid") for r in (right, off_time, wrong_asset)] == [True, True, False]
    assert [metrics.midpoint_in_top(r) for r in (right, off_time, wrong_asset)] == [True, False, False]
    assert metrics.top1_correct(wrong_asset, "bm25") and not metrics.top1_correct(wrong_asset, "vector")


def test_overlapping_hits_are_pairs_of_one_asset_whose_ranges_overlap() -> None:
    hits = [_hit("a", 0, 5), _hit("a", 4, 8), _hit("a", 8, 9), _hit("b", 0, 5), _hit("a", 1, 2)]
    # (0-5, 4-8) and (0-5, 1-2) overlap; 4-8 and 8-9 only touch; b is another asset.
    assert metrics.overlapping_pairs(hits) == 2
    assert metrics.overlapping_pairs([]) == 0


def test_scores_by_split_with_threshold_keep_and_drop() -> None:
    rows = [
        _row("exact", "dev", "a", (1.0, 2.0), hybrid=[_hit("a", 1, 2, 0.8)], vector=[_hit("a", 1, 2, 0.6)]),
        _row("paraphrase", "test", "a", (1.0, 2.0), hybrid=[_hit("b", 0, 3, 0.3)], bm25=[_hit("a", 1, 2)]),
        _row("topic", "test", "b", None, hybrid=[_hit("b", 0, 3, 0.7), _hit("b", 2, 4)]),
        _row("off_corpus", "dev", None, None, hybrid=[_hit("a", 0, 1, 0.2)], vector=[_hit("a", 0, 1, 0.2)]),
        _row("off_corpus", "test", None, None),  # no hit at all: dropped
        _row("off_corpus", "test", None, None, hybrid=[_hit("b", 0, 1, 0.55)]),
    ]
    m = metrics.score(_run(rows), threshold=0.5)
    hybrid = m["top1"]["all"]["hybrid"]
    assert hybrid == {"overall": 0.6667, "exact": 1.0, "paraphrase": 0.0, "topic": 1.0, "variant": None}
    assert m["top1"]["test"]["bm25"]["paraphrase"] == 1.0 and m["top1"]["dev"]["hybrid"]["overall"] == 1.0
    # hybrid: ranks 1, absent, 1; bm25: absent, 1, absent.
    assert m["mrr"]["all"] == {"hybrid": 0.6667, "bm25": 0.3333, "vector": 0.3333}
    assert m["midpoint"]["all"] == {"overall": 0.5, "exact": 1.0, "paraphrase": 0.0, "variant": None}
    assert (m["overlap_pairs"]["all"], m["overlap_queries"]["test"]) == (1, 1)
    assert m["keep"] == m["drop"] == {"dev": 1.0, "test": 0.5, "all": 0.6667}
    assert 0.2 < m["cosine_cut_dev"] <= 0.6 and m["cosine_keep"]["dev"] == m["cosine_drop"]["dev"] == 1.0
    verdict = metrics.goals(m, "test")
    assert verdict["hybrid_ge_best_single_paraphrase"] is False  # BM25 found it, hybrid did not
    assert verdict["hybrid_ge_best_single_variant"] is None and verdict["no_overlapping_hits"] is False
    assert verdict["drop"] is False and metrics.goals(m, "dev")["drop"] is True


def test_the_best_cut_balances_keep_and_drop() -> None:
    assert metrics.best_cut([0.9, 0.8, 0.7], [0.3, 0.5]) == 0.7
    assert metrics.best_cut([0.9, 0.4], [0.5, None]) in (0.9, 0.4)  # no clean cut: one side gives
    assert metrics.best_cut([], []) == 0.0


def test_the_report_is_a_table_with_verdicts_and_one_json_line() -> None:
    rows = [
        _row("exact", "test", "a", (1.0, 2.0), hybrid=[_hit("a", 1, 2, 0.8)]),
        _row("off_corpus", "test", None, None, hybrid=[_hit("a", 0, 1, 0.9)]),
    ]
    raw = _run(rows)
    m = metrics.score(raw, threshold=0.5)
    text = report.table(raw, m, "test")
    cells = {tuple(c[:2]): c[2:] for line in text.splitlines() if len(c := re.split(r"\s{2,}", line)) > 2}
    assert cells[("top-1 asset, exact", "hybrid")] == ["-", "1.000", "1.000"]
    assert cells[("top-1 asset, exact", "bm25")] == ["-", "0.000", "0.000"]
    assert cells[("dropped: off-corpus < 0.5", "hybrid")] == ["-", "0.000", "0.000", ">= 0.95", "FAIL"]
    assert cells[("kept: real top >= 0.5", "hybrid")][-1] == "PASS"
    assert "goals:" in text and "drop" in text.splitlines()[-1]
    parsed = json.loads(report.json_line(raw, m, "test"))
    assert (
        parsed["bench"] == "relevance"
        and parsed["goals"]["drop"] is False
        and parsed["goals"]["keep"] is True
    )
    assert parsed["failed"] == sum(v is False for v in parsed["goals"].values())


# The runner's failure paths (the whole run is exercised by test_a_tiny_run_collects_all_three_lists)


class _FakeApi:
    """Answers the ingest calls with an asset stuck in `status`."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.puts: list[str] = []

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        if method == "POST":
            return {"asset": {"id": "ast_1"}, "upload": {"url": "http://x/up", "headers": {}}}
        return {"status": self.status, "features": {"transcription": {"state": self.status}}}

    def put(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        self.puts.append(url)


def _one_file_corpus(tmp_path: Path) -> corpus_mod.Corpus:
    path = tmp_path / "x.wav"
    path.write_bytes(b"RIFF")
    f = corpus_mod.CorpusFile(
        "x", path, "audio/wav", "en-us", 150, 1.0, (corpus_mod.Sentence(0, "Hi.", 0.6, 0.9),)
    )
    return corpus_mod.Corpus(tmp_path, "h", (f,))


def test_an_asset_that_fails_or_never_gets_ready_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _one_file_corpus(tmp_path)
    api = _FakeApi("failed")
    with pytest.raises(runner.IngestError, match=r"x \(ast_1\) ended failed"):
        runner._ingest(api, "idx_1", corpus)  # type: ignore[arg-type]
    assert api.puts == ["http://x/up"]
    monkeypatch.setattr(runner, "READY_TIMEOUT_S", 0.0)
    with pytest.raises(runner.IngestError, match="not ready after 0 s"):
        runner._ingest(_FakeApi("processing"), "idx_1", corpus)  # type: ignore[arg-type]


def test_an_unexpected_api_answer_is_an_ingest_error() -> None:
    app = Starlette(
        routes=[
            Route("/v1/x", lambda r: JSONResponse({"error": "nope"}, status_code=500), methods=["GET"]),
            Route("/up", lambda r: JSONResponse({}, status_code=403), methods=["PUT"]),
        ]
    )
    api = runner._Api(TestClient(app), "key")
    with pytest.raises(runner.IngestError, match="GET /v1/x: 500"):
        api.call("GET", "/v1/x")
    with pytest.raises(runner.IngestError, match="signed URL: 403"):
        api.put("http://testserver/up", b"data", {})


@pytest.mark.slow
@needs_tools
def test_a_tiny_run_collects_all_three_lists(tiny: corpus_mod.Corpus) -> None:
    """The real runtime, models and API on the three-file corpus, with one query of each kind."""
    queries = (
        Query("exact-00", "exact", "steep the leaves", "tea", 1, "dev"),
        Query("off_corpus-00", "off_corpus", "tax deadline for self employed workers", None, None, "dev"),
    )
    raw = runner.collect(tiny, queries, workers=1)
    assert raw["meta"]["corpus_files"] == 3 and raw["meta"]["queries"] == 2
    tea = raw["assets"]["tea"]
    assert "leaves" in tea["transcript"].lower() and tea["segments"]
    exact = raw["queries"][0]
    assert exact["truth"] == {
        "asset_id": tea["asset_id"], "start": tea["sentences"][1]["start"], "end": tea["sentences"][1]["end"],
        "text": "Steep the leaves for three minutes.",
    }  # fmt: skip
    for system in ("hybrid", "bm25", "vector"):
        assert exact[system] and exact[system][0]["asset_id"] == tea["asset_id"], system
    assert all(-1.0 <= h["score"] <= 1.0 for h in exact["vector"])
    assert raw["queries"][1]["truth"]["asset_id"] is None
