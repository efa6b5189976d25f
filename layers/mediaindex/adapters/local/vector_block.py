"""The vectors of one (tenant, index, modality, model) block, addressed by their SQLite rowid.

A block is a stored segment (read-only, usually memory-mapped from the cache files; stored list by list
with inverted lists once it has ANN_MIN_ROWS rows) plus an in-memory delta of rows written since, and
tombstones for rows deleted since. Rowids only grow (the index hands them out), so both parts keep them
sorted and a rowid is found by binary search, with no per-row Python object. A query is exact below the
switch size and scores the nearest inverted lists above it; the delta rows take the list of their nearest
centroid, so they are probed with it. Deletes are tombstones: seen by the next query at once. When the
delta outgrows the stored rows, compaction folds everything live into a new segment (and new lists)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mediaindex.adapters.local import ivf_lists
from mediaindex.adapters.local.ivf_lists import F32, I64, IvfLists

# Below this many rows a block is searched exactly. Measured with bench/search_bench.py data (512 dims,
# see its docstring): under ~50k rows the lists must be probed so widely to reach recall@10 >= 0.95 (20k
# rows: 0.93 with a fifth of them probed) that exact search costs little more; from 50k, probing a tenth
# reaches 0.97 for a fifth of the exact work, and the share falls as the block grows.
ANN_MIN_ROWS = 50_000
# Lists probed for a top-k query. A fixed count: the nearest rows gather in fewer lists as a block grows.
# On that data 28 lists gave recall@10 0.96 at 50k rows (224 lists), 0.98-0.99 at 1M (949 lists; 16
# lists: 0.95). Beyond that, candidates scored per result asked for, for the filter walk.
NPROBE = 28
_CANDIDATES_PER_RESULT = 8
# The delta is folded in once it outgrows the stored rows (amortised: each row is rebuilt O(log n) times).
_COMPACT_MIN_DELTA = 4096


@dataclass(frozen=True)
class Segment:
    vecs: F32  # (rows, dim): a read-only memmap, or an array right after a build
    rowids: I64  # (rows,), in stored order
    ivf: IvfLists | None = None

    @staticmethod
    def empty(dim: int) -> Segment:
        return Segment(np.empty((0, dim), np.float32), np.empty(0, np.int64))


@dataclass(frozen=True)
class Built:
    """Live rows ready to store: vecs[order] are the rows to write, list by list."""

    vecs: F32
    rowids: I64
    order: I64
    ivf: IvfLists | None


def _find(sorted_ids: I64, wanted: I64) -> tuple[npt.NDArray[np.bool_], I64]:
    """For each wanted id: whether sorted_ids holds it, and where."""
    pos = np.searchsorted(sorted_ids, wanted)
    ok = pos < len(sorted_ids)
    ok[ok] = sorted_ids[pos[ok]] == wanted[ok]
    return ok, pos


def _top(rowids: I64, scores: F32, want: int) -> tuple[I64, F32]:
    keep = np.isfinite(scores)
    rowids, scores = rowids[keep], scores[keep]
    if want < len(scores):
        part = np.argpartition(-scores, want - 1)[:want]
        rowids, scores = rowids[part], scores[part]
    order = np.lexsort((rowids, -scores))  # best first; ties by age, so results are stable
    return rowids[order], scores[order]


class VectorBlock:
    def __init__(
        self,
        dim: int,
        gen: int,
        main: Segment,
        dead: npt.NDArray[np.bool_] | None = None,
        delta_rowids: I64 | None = None,
        delta_vecs: F32 | None = None,
        delta_lists: npt.NDArray[np.int32] | None = None,
    ) -> None:
        self.dim = dim
        self.gen = gen  # the SQLite generation this state reflects
        self.main = main
        self.dead = np.zeros(len(main.rowids), np.bool_) if dead is None else np.array(dead, np.bool_)
        self._main_order: I64 | None = None  # argsort of main.rowids, built on the first delete
        self._nd = 0
        self._dvecs = np.empty((0, dim), np.float32)
        self._drowids = np.empty(0, np.int64)
        self._dlist = np.empty(0, np.int32)
        self._ddead = np.empty(0, np.bool_)
        self.live = int(len(main.rowids) - self.dead.sum())
        if delta_rowids is not None and delta_vecs is not None and len(delta_rowids):
            self.add(delta_rowids, delta_vecs, delta_lists)

    @property
    def exact(self) -> bool:
        return self.main.ivf is None

    @property
    def delta_rows(self) -> int:
        return self._nd

    def delta(self) -> tuple[I64, F32, npt.NDArray[np.int32]]:
        """The live delta rows and their lists (what a cache flush stores beside the segment)."""
        live = ~self._ddead[: self._nd]
        return self._drowids[: self._nd][live], self._dvecs[: self._nd][live], self._dlist[: self._nd][live]

    # Writes

    def add(self, rowids: I64, vecs: F32, lists: npt.NDArray[np.int32] | None = None) -> None:
        """Appends rows; their rowids must exceed every rowid already here. `lists`: their nearest lists,
        when already known (a cache load), so they are not assigned again."""
        n = len(rowids)
        if self._nd + n > len(self._drowids):
            cap = max(64, self._nd + n, int(len(self._drowids) * 1.5))
            self._dvecs = np.resize(self._dvecs, (cap, self.dim))
            self._drowids = np.resize(self._drowids, cap)
            self._dlist = np.resize(self._dlist, cap)
            self._ddead = np.resize(self._ddead, cap)
        end = self._nd + n
        self._dvecs[self._nd : end] = vecs
        self._drowids[self._nd : end] = rowids
        self._ddead[self._nd : end] = False
        if self.main.ivf is not None:
            self._dlist[self._nd : end] = self.main.ivf.assign(vecs) if lists is None else lists
        self._nd = end
        self.live += n

    def remove(self, rowids: I64) -> None:
        if not len(rowids):
            return
        if len(self.main.rowids):
            if self._main_order is None:
                self._main_order = np.argsort(self.main.rowids, kind="stable").astype(np.int64)
            order = self._main_order
            ok, pos = _find(self.main.rowids[order], rowids)
            rows = order[pos[ok]]
            self.live -= int((~self.dead[rows]).sum())
            self.dead[rows] = True
        ok, pos = _find(self._drowids[: self._nd], rowids)
        rows = pos[ok]
        self.live -= int((~self._ddead[rows]).sum())
        self._ddead[rows] = True

    # Queries

    def search(self, q: F32, want: int, *, exact: bool = False) -> tuple[I64, F32]:
        """Up to `want` (rowid, cosine) pairs, best first: exact, or from the nearest lists."""
        ivf = self.main.ivf
        if ivf is None or exact:
            main_rows: I64 | slice = slice(None)
            main_scores = self.main.vecs @ q
            drows = np.flatnonzero(~self._ddead[: self._nd])
        else:
            nprobe = max(NPROBE, math.ceil(_CANDIDATES_PER_RESULT * want * ivf.count / max(1, self.live)))
            lists = np.sort(ivf.nearest(q, nprobe))
            bounds = [(int(ivf.offsets[i]), int(ivf.offsets[i + 1])) for i in lists]
            # One product per list: each is a contiguous slice of the stored matrix, nothing is copied.
            main_scores = np.concatenate(
                [self.main.vecs[a:b] @ q for a, b in bounds] or [np.empty(0, np.float32)]
            )
            main_rows = np.concatenate([np.arange(a, b) for a, b in bounds] or [np.empty(0, np.int64)])
            probed = np.zeros(ivf.count, np.bool_)
            probed[lists] = True
            drows = np.flatnonzero(probed[self._dlist[: self._nd]] & ~self._ddead[: self._nd])
        main_scores[self.dead[main_rows]] = -np.inf
        rowids = np.concatenate((self.main.rowids[main_rows], self._drowids[drows]))
        scores = np.concatenate((main_scores, self._dvecs[drows] @ q))
        return _top(rowids, scores, want)

    def score(self, q: F32, rowids: I64, want: int) -> tuple[I64, F32]:
        """The best `want` of the given rowids, scored exactly (the filtered fallback)."""
        rowids = np.unique(rowids)
        order = self._main_order
        if order is None and len(self.main.rowids):
            order = self._main_order = np.argsort(self.main.rowids, kind="stable").astype(np.int64)
        parts_ids, parts_scores = [], []
        if order is not None:
            ok, pos = _find(self.main.rowids[order], rowids)
            rows = np.sort(order[pos[ok]])
            rows = rows[~self.dead[rows]]
            parts_ids.append(self.main.rowids[rows])
            parts_scores.append(self.main.vecs[rows] @ q)
        ok, pos = _find(self._drowids[: self._nd], rowids)
        rows = pos[ok]
        rows = rows[~self._ddead[rows]]
        parts_ids.append(self._drowids[rows])
        parts_scores.append(self._dvecs[rows] @ q)
        return _top(np.concatenate(parts_ids), np.concatenate(parts_scores).astype(np.float32), want)

    # Compaction

    def needs_compaction(self, *, closing: bool = False) -> bool:
        stored = len(self.main.rowids)
        if closing:
            return self._nd > stored // 4 or int(self.dead.sum()) > stored // 4
        return self._nd > max(_COMPACT_MIN_DELTA, stored) or int(self.dead.sum()) > max(
            _COMPACT_MIN_DELTA, stored // 2
        )

    def compacted(self, *, seed: int = 0) -> Built:
        """Every live row, with the list order to store them in (lists only from ANN_MIN_ROWS rows)."""
        live = np.flatnonzero(~self.dead)
        drow, dvec, _ = self.delta()
        vecs = np.concatenate((self.main.vecs[live], dvec)).astype(np.float32, copy=False)
        rowids = np.concatenate((self.main.rowids[live], drow))
        return build(vecs, rowids, seed=seed)


def build(vecs: F32, rowids: I64, *, seed: int = 0) -> Built:
    if len(rowids) < ANN_MIN_ROWS:
        return Built(vecs, rowids, np.arange(len(rowids), dtype=np.int64), None)
    order, ivf = ivf_lists.build(vecs, seed=seed)
    return Built(vecs, rowids, order, ivf)
