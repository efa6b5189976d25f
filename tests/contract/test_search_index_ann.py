"""The embedded index above the ANN switch size, and its vector cache: recall against exact search,
filters inside the query, deletes seen at once, reopening from the cache, and rebuilding from SQLite
when the cache is missing, corrupt or names another generation (a crash between commit and flush)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mediaindex.adapters.local import vector_cache
from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex
from mediaindex.adapters.local.vector_block import ANN_MIN_ROWS
from mediaindex.ports.search import SearchDoc, SearchFilter

DIM = 16
N = ANN_MIN_ROWS + 4000
MODEL = "clip:test"
A = SearchFilter(tenant_id="ten_a", index_id="idx_one")
KEY = ("ten_a", "idx_one", "visual", MODEL)


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(50, DIM)).astype(np.float32)
    v = c[rng.integers(0, 50, size=n)] + 0.4 * rng.normal(size=(n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


VECS = clustered(N, seed=11)
QUERIES = clustered(30, seed=12)


def media(i: int) -> str:
    return "audio" if i % 500 == 0 else "video"  # audio: 0.2% of rows, too few for the walk


def docs(rows: range) -> list[SearchDoc]:
    return [
        SearchDoc(
            segment_id=f"seg_{i}",
            tenant_id="ten_a",
            index_id="idx_one",
            asset_id=f"ast_{i}",
            media_type=media(i),
            start=0.0,
            end=1.0,
            user_metadata={"half": i % 2},
            vectors={"visual": (MODEL, VECS[i].tolist())},
        )
        for i in rows
    ]


def ann_doc(seg: str, vec: np.ndarray) -> SearchDoc:
    vectors = {"visual": (MODEL, vec.tolist())}
    return SearchDoc(seg, "ten_a", "idx_one", f"ast_{seg}", "video", 0, 1, vectors=vectors)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ann")
    index = EmbeddedSearchIndex(d)
    for i in range(0, N, 2000):
        index.upsert(docs(range(i, min(N, i + 2000))))
    index.close()
    return d


@pytest.fixture
def data(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built index, so a test may damage it."""
    return Path(shutil.copytree(built, tmp_path / "data"))


def exact(q: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[str]:
    ids = np.arange(N) if rows is None else rows
    s = VECS[ids] @ q
    return [f"seg_{i}" for i in ids[np.argsort(-s, kind="stable")[:k]]]


def knn(index: EmbeddedSearchIndex, q: np.ndarray, k: int = 10, flt: SearchFilter = A) -> list[str]:
    return [h.segment_id for h in index.knn(flt, modality="visual", model_id=MODEL, vector=q.tolist(), k=k)]


def recall(index: EmbeddedSearchIndex) -> float:
    return float(np.mean([len(set(knn(index, q)) & set(exact(q, 10))) / 10 for q in QUERIES]))


def header(data: Path) -> dict[str, object]:
    d = vector_cache.block_dir(data / "search.vectors", KEY)
    return dict(json.loads((d / "header.json").read_text()))


def test_the_block_is_stored_with_lists_and_ann_matches_exact(data: Path) -> None:
    h = header(data)
    assert h["rows"] == N
    index = EmbeddedSearchIndex(data)
    assert recall(index) >= 0.95
    # scores are cosine similarities, best first
    hits = index.knn(A, modality="visual", model_id=MODEL, vector=QUERIES[0].tolist(), k=10)
    want = {f"seg_{i}": float(VECS[i] @ QUERIES[0]) for i in range(N)}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.score == pytest.approx(want[h.segment_id], abs=1e-4) for h in hits)
    index.close()
    d = vector_cache.block_dir(data / "search.vectors", KEY)
    with np.load(d / f"main-{h['main']}.npz") as z:
        assert len(z["centroids"]) > 1  # the ANN path, not exact


def test_filters_apply_inside_the_ann_query(data: Path) -> None:
    index = EmbeddedSearchIndex(data)
    audio = np.array([i for i in range(N) if media(i) == "audio"])
    even = np.arange(0, N, 2)
    rare = SearchFilter(tenant_id="ten_a", index_id="idx_one", media_type="audio")
    half = SearchFilter(tenant_id="ten_a", index_id="idx_one", user_metadata={"half": 0})
    for q in QUERIES[:5]:
        # Few rows pass (0.2%): the exact top 5 among them, not an empty post-filtered page.
        assert knn(index, q, 5, rare) == exact(q, 5, audio)
        # Half pass: every hit passes, and they are (nearly all) the exact top 10 among those rows.
        got = knn(index, q, 10, half)
        assert len(got) == 10 and all(int(s[4:]) % 2 == 0 for s in got)
        assert len(set(got) & set(exact(q, 10, even))) >= 8
    nothing = SearchFilter(tenant_id="ten_a", index_id="idx_one", media_type="image")
    assert knn(index, QUERIES[0], 5, nothing) == []
    index.close()


def test_a_delete_is_seen_at_once_and_after_a_reopen(data: Path) -> None:
    index = EmbeddedSearchIndex(data)
    q = VECS[77]
    assert knn(index, q, 1) == ["seg_77"]
    index.delete_asset("ten_a", "ast_77")
    assert "seg_77" not in knn(index, q, 10)
    # Written again with another vector: found by that one, no longer by the old one
    other = clustered(1, seed=97)[0]
    index.upsert([ann_doc("seg_77", other)])
    assert knn(index, other, 1) == ["seg_77"]
    assert "seg_77" not in knn(index, q, 10)
    index.delete_index("ten_a", "idx_one")
    assert knn(index, q, 10) == []
    index.close()
    again = EmbeddedSearchIndex(data)
    assert knn(again, q, 10) == []
    assert not vector_cache.block_dir(data / "search.vectors", KEY).exists()
    again.close()


def test_reopen_maps_the_cache_without_a_rebuild(data: Path) -> None:
    # Given one row written after the last compaction: the close stores it as the cached delta
    before = header(data)
    writer = EmbeddedSearchIndex(data)
    new = clustered(1, seed=98)[0]
    writer.upsert([ann_doc("seg_new", new)])
    writer.close()
    flushed = header(data)
    assert flushed["main"] == before["main"] and flushed["gen"] != before["gen"]
    d = vector_cache.block_dir(data / "search.vectors", KEY)
    with np.load(d / str(flushed["state"])) as z:
        assert len(z["delta_rowids"]) == 1
    # When the index is opened again and queried
    t = time.perf_counter()
    index = EmbeddedSearchIndex(data)
    first = knn(index, QUERIES[0])
    took = time.perf_counter() - t
    # Then the stored rows are mapped back, not rebuilt, and the delta row is found in its list
    assert first == knn(index, QUERIES[0]) and len(first) == 10
    assert knn(index, new, 1) == ["seg_new"]
    assert knn(index, VECS[0], 1) == ["seg_0"]  # the write kept the rows already stored
    index.close()
    assert header(data)["main"] == before["main"]
    assert took < 1.0


@pytest.mark.parametrize(
    "damage", ["delete_dir", "truncate_rows", "garble_header", "garble_ids", "bad_lists"]
)
def test_a_missing_or_corrupt_cache_is_rebuilt_from_sqlite(data: Path, damage: str) -> None:
    d = vector_cache.block_dir(data / "search.vectors", KEY)
    token = header(data)["main"]
    if damage == "delete_dir":
        shutil.rmtree(d)
    elif damage == "truncate_rows":
        with open(d / f"main-{token}.f32", "r+b") as f:
            f.truncate(1000)
    elif damage == "garble_header":
        (d / "header.json").write_text("{not json")
    elif damage == "garble_ids":
        (d / f"main-{token}.npz").write_bytes(b"PK\x03\x04 broken")
    else:
        writer = EmbeddedSearchIndex(data)  # one row in the cached delta, with its list
        writer.upsert([ann_doc("seg_new", clustered(1, seed=96)[0])])
        writer.close()
        state = d / str(header(data)["state"])
        with np.load(state) as z:
            arrays = dict(z)
        arrays["delta_lists"] = np.full_like(arrays["delta_lists"], 10**6)  # no such list
        np.savez(state, **arrays)
    index = EmbeddedSearchIndex(data)
    assert recall(index) >= 0.95
    index.close()
    assert header(data)["main"] != token  # rebuilt and stored again


def test_a_crash_before_the_flush_rebuilds_from_sqlite(data: Path) -> None:
    # Given writes committed to SQLite whose cache is never written (the process dies before close)
    crashed = EmbeddedSearchIndex(data)
    q = VECS[5]
    crashed.delete_asset("ten_a", "ast_5")
    new = clustered(1, seed=99)[0]
    crashed.upsert([ann_doc("seg_new", new)])
    stale = header(data)
    # When the index is opened again
    index = EmbeddedSearchIndex(data)
    # Then the cache's older generation is not trusted: the delete holds and the new row is found
    assert "seg_5" not in knn(index, q, 10)
    assert knn(index, new, 1) == ["seg_new"]
    index.close()
    assert header(data)["gen"] != stale["gen"]


def test_a_database_restored_from_backup_does_not_trust_a_newer_cache(data: Path, tmp_path: Path) -> None:
    # Given a copy of the database taken before a delete that the cache then recorded
    backup = tmp_path / "backup.db"
    with sqlite3.connect(data / "search.db") as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    index = EmbeddedSearchIndex(data)
    index.delete_asset("ten_a", "ast_9")
    index.close()
    # When the old database is put back under the newer cache
    with sqlite3.connect(backup) as src, sqlite3.connect(data / "search.db") as dst:
        src.backup(dst)
    restored = EmbeddedSearchIndex(data)
    # Then the database wins: the segment is back
    assert knn(restored, VECS[9], 1) == ["seg_9"]
    restored.close()


def test_an_unwritable_cache_leaves_the_index_working(tmp_path: Path) -> None:
    (tmp_path / "search.vectors").write_text("a file where the cache directory should be")
    index = EmbeddedSearchIndex(tmp_path)
    index.upsert(docs(range(0, 50)))
    assert knn(index, VECS[3], 1) == ["seg_3"]
    index.close()
    again = EmbeddedSearchIndex(tmp_path)
    assert knn(again, VECS[3], 1) == ["seg_3"]
    again.close()


def test_a_database_from_before_the_cache_is_migrated(tmp_path: Path) -> None:
    # Given a database written by the previous release: no vector_blocks table, user_version 0
    db = sqlite3.connect(tmp_path / "search.db")
    db.executescript(
        """
        CREATE TABLE docs (segment_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, index_id TEXT NOT NULL,
            asset_id TEXT NOT NULL, media_type TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL,
            text TEXT, keyframe_key TEXT, user_metadata TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE vectors (segment_id TEXT NOT NULL, modality TEXT NOT NULL, model_id TEXT NOT NULL,
            dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (segment_id, modality));
        """
    )
    for i in range(3):
        db.execute(
            "INSERT INTO docs VALUES (?, 'ten_a', 'idx_one', ?, 'video', 0, 1, NULL, NULL, '{}')",
            (f"seg_{i}", f"ast_{i}"),
        )
        db.execute(
            "INSERT INTO vectors VALUES (?, 'visual', ?, ?, ?)", (f"seg_{i}", MODEL, DIM, VECS[i].tobytes())
        )
    db.commit()
    db.close()
    # When the index opens it, and a new segment is written beside the old ones
    index = EmbeddedSearchIndex(tmp_path)
    assert knn(index, VECS[1], 1) == ["seg_1"]
    index.upsert(docs(range(3, 4)))
    # Then old and new vectors are searched, and the new one took a fresh rowid
    assert knn(index, VECS[3], 1) == ["seg_3"]
    assert sorted(knn(index, VECS[0], 4)) == ["seg_0", "seg_1", "seg_2", "seg_3"]
    index.close()


def test_concurrent_writers_and_readers_see_every_committed_segment(tmp_path: Path) -> None:
    index = EmbeddedSearchIndex(tmp_path)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(t * 1000, t * 1000 + 1000, 100):
                index.upsert(docs(range(i, i + 100)))
                assert knn(index, VECS[i + 50], 1) == [f"seg_{i + 50}"]
        except BaseException as e:  # surfaced below: a thread's failure must fail the test
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    # 5,000 rows: a compaction ran while other threads wrote and read
    assert sorted(knn(index, VECS[2500], 5000)) == sorted(f"seg_{i}" for i in range(5000))
    index.close()
