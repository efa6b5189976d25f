"""VectorBlock and its inverted lists, without SQLite: ANN recall against exact search, tombstones,
rows added after the lists were trained, compaction, and the exact scoring of given rows."""

from __future__ import annotations

import numpy as np
import pytest

from mediaindex.adapters.local import ivf_lists
from mediaindex.adapters.local.vector_block import ANN_MIN_ROWS, Segment, VectorBlock, build

DIM = 24


def clustered(n: int, seed: int, centres: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, DIM)).astype(np.float32)
    v = c[rng.integers(0, centres, size=n)] + 0.4 * rng.normal(size=(n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def stored(vecs: np.ndarray, first_rowid: int = 1) -> VectorBlock:
    built = build(vecs, np.arange(first_rowid, first_rowid + len(vecs), dtype=np.int64))
    segment = Segment(np.ascontiguousarray(built.vecs[built.order]), built.rowids[built.order], built.ivf)
    return VectorBlock(DIM, 1, segment)


def exact_top(vecs: np.ndarray, rowids: np.ndarray, q: np.ndarray, k: int) -> set[int]:
    s = vecs @ q
    return set(rowids[np.argsort(-s)[:k]].tolist())


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered(ANN_MIN_ROWS + 5000, seed=1)


def test_lists_store_every_row_once(data: np.ndarray) -> None:
    order, ivf = ivf_lists.build(data)
    assert sorted(order.tolist()) == list(range(len(data)))
    assert ivf.offsets[0] == 0 and ivf.offsets[-1] == len(data)
    assert np.all(np.diff(ivf.offsets) >= 0)
    # each stored row sits in the list of its nearest centroid
    labels = ivf.assign(data[order])
    assert np.array_equal(labels, np.repeat(np.arange(ivf.count), np.diff(ivf.offsets)))


def test_small_blocks_stay_exact_and_large_ones_get_lists(data: np.ndarray) -> None:
    assert stored(data[: ANN_MIN_ROWS - 1]).exact
    assert not stored(data).exact


def test_ann_top_k_matches_exact_on_clustered_data(data: np.ndarray) -> None:
    block = stored(data)
    rowids = np.arange(1, len(data) + 1)
    queries = clustered(50, seed=2)
    recall = []
    for q in queries:
        got, scores = block.search(q, 10)
        assert list(scores) == sorted(scores, reverse=True)
        assert np.allclose(scores, data[got - 1] @ q, atol=1e-5)
        recall.append(len(set(got.tolist()) & exact_top(data, rowids, q, 10)) / 10)
    assert np.mean(recall) >= 0.95


def test_a_deleted_row_is_gone_at_once_and_rows_added_later_are_found(data: np.ndarray) -> None:
    block = stored(data)
    q = data[123]
    top, _ = block.search(q, 1)
    assert top.tolist() == [124]  # rowid = row + 1
    block.remove(np.array([124, 10**9]))  # an unknown rowid is ignored
    assert 124 not in block.search(q, 10)[0].tolist()
    assert block.live == len(data) - 1
    # A row added after the lists were trained goes to its nearest list and is probed with it.
    block.add(np.array([10**6], np.int64), q[None, :])
    got, scores = block.search(q, 1)
    assert got.tolist() == [10**6] and scores[0] == pytest.approx(1.0, abs=1e-5)
    block.remove(np.array([10**6]))
    assert 10**6 not in block.search(q, 10, exact=True)[0].tolist()
    assert block.live == len(data) - 1


def test_compaction_keeps_exactly_the_live_rows(data: np.ndarray) -> None:
    block = stored(data[:5000])
    block.remove(np.arange(1, 101))
    block.add(np.arange(10_001, 10_001 + 6000), data[5000:11000])
    assert block.needs_compaction()
    built = block.compacted()
    assert sorted(built.rowids.tolist()) == list(range(101, 5001)) + list(range(10_001, 16_001))
    moved = dict(zip(built.rowids.tolist(), range(len(built.rowids)), strict=True))
    assert np.array_equal(built.vecs[moved[10_001]], data[5000])
    assert built.ivf is None  # 10,900 rows: below the switch size


def test_score_ranks_only_the_given_live_rows(data: np.ndarray) -> None:
    block = stored(data)
    block.add(np.array([10**6], np.int64), data[:1])
    block.remove(np.array([3]))
    q = data[0]
    got, scores = block.search(q, 5, exact=True)
    assert set(got[:2].tolist()) == {1, 10**6}
    wanted = np.array([3, 50, 60, 10**6, 10**7], np.int64)  # 3 is deleted, 10**7 unknown
    got, scores = block.score(q, wanted, 10)
    assert got[0] == 10**6 and set(got.tolist()) == {50, 60, 10**6}
    assert np.allclose(
        scores, [float(data[r - 1] @ q) if r < 10**6 else 1.0 for r in got.tolist()], atol=1e-5
    )


def test_an_empty_block_answers_nothing() -> None:
    block = VectorBlock(DIM, 1, Segment.empty(DIM))
    got, scores = block.search(clustered(1, seed=3)[0], 10)
    assert len(got) == 0 and len(scores) == 0 and block.live == 0
