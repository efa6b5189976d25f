"""Inverted lists over unit vectors (IVF-flat), in numpy: spherical k-means cuts the rows into about
sqrt(n) lists, the rows are stored list by list, and a query scores only the lists whose centroids
are nearest to it. No vector is copied or quantised, so the lists cost nothing but their centroids and
offsets, and the exact path can keep using the same matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

# Training rows per list and k-means rounds: enough for stable centroids, cheap next to assigning all rows.
_SAMPLE_PER_LIST = 32
_ROUNDS = 8
_CHUNK = 65_536


@dataclass(frozen=True)
class IvfLists:
    centroids: F32  # (lists, dim), unit rows
    offsets: I64  # (lists + 1,): list i holds stored rows offsets[i]:offsets[i + 1]

    @property
    def count(self) -> int:
        return int(self.centroids.shape[0])

    def nearest(self, q: F32, nprobe: int) -> I64:
        """The nprobe lists whose centroids are nearest to q."""
        s = self.centroids @ q
        if nprobe >= len(s):
            return np.arange(len(s), dtype=np.int64)
        return np.argpartition(-s, nprobe - 1)[:nprobe].astype(np.int64)

    def assign(self, vecs: F32) -> npt.NDArray[np.int32]:
        return assign(vecs, self.centroids)


def assign(vecs: F32, centroids: F32) -> npt.NDArray[np.int32]:
    out = np.empty(len(vecs), dtype=np.int32)
    for i in range(0, len(vecs), _CHUNK):
        out[i : i + _CHUNK] = np.argmax(vecs[i : i + _CHUNK] @ centroids.T, axis=1)
    return out


def build(vecs: F32, *, seed: int = 0) -> tuple[I64, IvfLists]:
    """Trains lists on a sample; returns the order that stores the rows list by list, and the lists."""
    n = len(vecs)
    lists = max(1, round(np.sqrt(n)))
    rng = np.random.default_rng(seed)
    sample = vecs[np.sort(rng.choice(n, size=min(n, lists * _SAMPLE_PER_LIST), replace=False))]
    centroids = np.array(sample[rng.choice(len(sample), size=lists, replace=False)], dtype=np.float32)
    for _ in range(_ROUNDS):
        labels = assign(sample, centroids)
        counts = np.bincount(labels, minlength=lists)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        sums = np.zeros_like(centroids)
        full = counts > 0
        sums[full] = np.add.reduceat(sample[np.argsort(labels, kind="stable")], starts[full], axis=0)
        norms = np.linalg.norm(sums, axis=1)
        empty = norms == 0
        # An empty list takes a random sample row, so no list stays dead.
        sums[empty] = sample[rng.choice(len(sample), size=int(empty.sum()))]
        norms[empty] = np.linalg.norm(sums[empty], axis=1)
        centroids = (sums / np.maximum(norms, 1e-12)[:, None]).astype(np.float32)
    labels = assign(vecs, centroids)
    order = np.argsort(labels, kind="stable").astype(np.int64)
    offsets = np.zeros(lists + 1, dtype=np.int64)
    np.cumsum(np.bincount(labels, minlength=lists), out=offsets[1:])
    return order, IvfLists(centroids, offsets)
