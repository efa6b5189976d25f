"""Embedded search index: no server, persistent in the local data dir.

SQLite (its own file, WAL) holds the documents, an FTS5 table (porter stemmer) for BM25 over transcript
text, and every vector as a float32 blob. At start the vectors are loaded into memory, one contiguous
float32 matrix per (tenant, index, modality, model_id), and kept in step with every write. A k-NN query
is an exact cosine search (one matrix-vector product) over the block of its own tenant and index only,
so the tenant/index filter is part of the query, never applied after it. 100k x 384 takes ~10 ms on two
cores; larger libraries want the OpenSearch adapter.

Thread-safe: one lock guards the connection and the in-memory blocks (reads too: a k-NN query is a
few milliseconds, and a consistent view matters more than parallel readers here)."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mediaindex.domain.errors import ValidationError
from mediaindex.domain.text_terms import content_words
from mediaindex.ports.search import SearchDoc, SearchFilter, SearchHit, SearchIndex

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    segment_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    index_id TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    text TEXT,
    keyframe_key TEXT,
    user_metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS docs_asset ON docs (tenant_id, asset_id);
CREATE INDEX IF NOT EXISTS docs_index ON docs (tenant_id, index_id);
CREATE TABLE IF NOT EXISTS vectors (
    segment_id TEXT NOT NULL,
    modality TEXT NOT NULL,
    model_id TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (segment_id, modality)
);
-- rowid = docs.rowid: deletes and joins go by rowid (an UNINDEXED column would be a full scan).
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(text, tokenize = 'porter unicode61');
"""

_WORD = re.compile(r"\w+", re.UNICODE)

BlockKey = tuple[str, str, str, str]  # tenant_id, index_id, modality, model_id


@dataclass
class _Meta:
    """What a hit needs without a trip to SQLite."""

    asset_id: str
    media_type: str
    start: float
    end: float
    text: str | None
    keyframe_key: str | None
    user_metadata: dict[str, Any]


class _Block:
    """Rows of one (tenant, index, modality, model): a growable float32 matrix, removal by swapping
    the last row in, so the live rows stay contiguous for one BLAS call."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.mat: npt.NDArray[np.float32] = np.empty((64, dim), dtype=np.float32)
        self.ids: list[str] = []
        self.row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def put(self, segment_id: str, vec: npt.NDArray[np.float32]) -> None:
        r = self.row.get(segment_id)
        if r is None:
            r = len(self.ids)
            if r == self.mat.shape[0]:
                grown = np.empty((max(64, r * 2), self.dim), dtype=np.float32)
                grown[:r] = self.mat[:r]
                self.mat = grown
            self.ids.append(segment_id)
            self.row[segment_id] = r
        self.mat[r] = vec

    def remove(self, segment_id: str) -> None:
        r = self.row.pop(segment_id, None)
        if r is None:
            return
        last = len(self.ids) - 1
        if r != last:
            moved = self.ids[last]
            self.mat[r] = self.mat[last]
            self.ids[r] = moved
            self.row[moved] = r
        self.ids.pop()

    def scores(self, q: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return self.mat[: len(self.ids)] @ q


def _normalise(v: Iterable[float] | npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(a))
    return a / n if n > 0 else a


def _matches(meta: _Meta, flt: SearchFilter) -> bool:
    if flt.media_type is not None and meta.media_type != flt.media_type:
        return False
    return all(meta.user_metadata.get(k) == v for k, v in flt.user_metadata.items())


def fts_query(text: str) -> str | None:
    """User text -> an FTS5 expression: its content words (stopwords dropped, as OpenSearch's `english`
    analyzer does) each quoted, so FTS syntax in the input is inert, and OR-ed as `match` does."""
    words = [p for w in content_words(text) for p in _WORD.findall(w)]
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))


class EmbeddedSearchIndex(SearchIndex):
    def __init__(self, dir: Path, *, filename: str = "search.db") -> None:
        dir.mkdir(parents=True, exist_ok=True)
        self.path = dir / filename
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._blocks: dict[BlockKey, _Block] = {}
        self._meta: dict[str, _Meta] = {}
        self._doc_key: dict[str, tuple[str, str]] = {}  # segment_id -> (tenant, index)
        self._doc_blocks: dict[str, dict[str, BlockKey]] = {}  # segment_id -> modality -> block
        self._load()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Loading

    def _load(self) -> None:
        with self._lock:
            for row in self._db.execute(
                'SELECT segment_id, tenant_id, index_id, asset_id, media_type, start, "end", text, '
                "keyframe_key, user_metadata FROM docs"
            ):
                sid = row[0]
                self._doc_key[sid] = (row[1], row[2])
                self._meta[sid] = _Meta(row[3], row[4], row[5], row[6], row[7], row[8], json.loads(row[9]))
            for sid, modality, model_id, blob in self._db.execute(
                "SELECT segment_id, modality, model_id, vec FROM vectors"
            ):
                tenant_id, index_id = self._doc_key[sid]
                self._put_vec(sid, (tenant_id, index_id, modality, model_id), np.frombuffer(blob, np.float32))

    def _put_vec(self, sid: str, key: BlockKey, vec: npt.NDArray[np.float32]) -> None:
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = _Block(vec.shape[0])
        elif block.dim != vec.shape[0]:
            raise ValidationError(
                f"vector of {vec.shape[0]} dims for model {key[3]!r}, which has {block.dim}", field="vectors"
            )
        block.put(sid, vec)
        self._doc_blocks.setdefault(sid, {})[key[2]] = key

    # Writes

    def upsert(self, docs: list[SearchDoc]) -> None:
        if not docs:
            return
        prepared = [(d, {m: (model, _normalise(v)) for m, (model, v) in d.vectors.items()}) for d in docs]
        with self._lock:
            # Dimensions are checked before anything is written, so a bad batch changes nothing.
            for d, vecs in prepared:
                for m, (model, v) in vecs.items():
                    block = self._blocks.get((d.tenant_id, d.index_id, m, model))
                    if block is not None and block.dim != v.shape[0]:
                        raise ValidationError(
                            f"vector of {v.shape[0]} dims for model {model!r}, which has {block.dim}",
                            field="vectors",
                        )
            self._db.execute("BEGIN")
            try:
                written: set[str] = set()
                for d, vecs in prepared:
                    if d.segment_id in self._doc_key or d.segment_id in written:
                        self._delete_rows([d.segment_id])
                    written.add(d.segment_id)
                    cur = self._db.execute(
                        "INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            d.segment_id, d.tenant_id, d.index_id, d.asset_id, d.media_type, d.start,
                            d.end, d.text, d.keyframe_key, json.dumps(d.user_metadata, sort_keys=True),
                        ),
                    )  # fmt: skip
                    if d.text:
                        self._db.execute(
                            "INSERT INTO docs_fts (rowid, text) VALUES (?, ?)", (cur.lastrowid, d.text)
                        )
                    for m, (model, v) in vecs.items():
                        self._db.execute(
                            "INSERT INTO vectors VALUES (?, ?, ?, ?, ?)",
                            (d.segment_id, m, model, int(v.shape[0]), v.tobytes()),
                        )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            # Memory follows only once SQLite has committed.
            for d, vecs in prepared:
                self._forget([d.segment_id])
                self._doc_key[d.segment_id] = (d.tenant_id, d.index_id)
                self._meta[d.segment_id] = _Meta(
                    d.asset_id, d.media_type, d.start, d.end, d.text, d.keyframe_key, dict(d.user_metadata)
                )
                for m, (model, v) in vecs.items():
                    self._put_vec(d.segment_id, (d.tenant_id, d.index_id, m, model), v)

    def _delete_rows(self, sids: list[str]) -> None:
        for i in range(0, len(sids), 500):
            chunk = sids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            self._db.execute(
                f"DELETE FROM docs_fts WHERE rowid IN (SELECT rowid FROM docs WHERE segment_id IN ({marks}))",  # noqa: S608
                chunk,
            )
            for table in ("docs", "vectors"):
                self._db.execute(f"DELETE FROM {table} WHERE segment_id IN ({marks})", chunk)  # noqa: S608

    def _forget(self, sids: list[str]) -> None:
        for sid in sids:
            for key in self._doc_blocks.pop(sid, {}).values():
                block = self._blocks.get(key)
                if block is not None:
                    block.remove(sid)
                    if not len(block):
                        del self._blocks[key]
            self._meta.pop(sid, None)
            self._doc_key.pop(sid, None)

    def _delete_where(self, where: str, args: tuple[str, ...]) -> None:
        with self._lock:
            sids = [r[0] for r in self._db.execute(f"SELECT segment_id FROM docs WHERE {where}", args)]  # noqa: S608
            if not sids:
                return
            self._db.execute("BEGIN")
            try:
                self._delete_rows(sids)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._forget(sids)

    def delete_asset(self, tenant_id: str, asset_id: str) -> None:
        self._delete_where("tenant_id = ? AND asset_id = ?", (tenant_id, asset_id))

    def delete_index(self, tenant_id: str, index_id: str) -> None:
        self._delete_where("tenant_id = ? AND index_id = ?", (tenant_id, index_id))

    # Queries

    def _hit(self, sid: str, score: float) -> SearchHit:
        m = self._meta[sid]
        return SearchHit(sid, m.asset_id, m.start, m.end, score, m.text, m.keyframe_key)

    def knn(
        self, flt: SearchFilter, *, modality: str, model_id: str, vector: list[float], k: int
    ) -> list[SearchHit]:
        q = _normalise(vector)
        with self._lock:
            block = self._blocks.get((flt.tenant_id, flt.index_id, modality, model_id))
            if block is None or k <= 0:
                return []
            if block.dim != q.shape[0]:
                raise ValidationError(
                    f"query vector has {q.shape[0]} dims; model {model_id!r} has {block.dim}", field="vector"
                )
            scores = block.scores(q)
            n = len(scores)
            filtered = flt.media_type is not None or bool(flt.user_metadata)
            # Without a filter the top k are exact from one partition. With one, walk the ranking in
            # growing windows until k rows pass it: still exact, and cheap when most rows pass.
            want = k if not filtered else min(n, max(4 * k, 64))
            while True:
                if want >= n:
                    order = np.argsort(-scores, kind="stable")
                else:
                    top = np.argpartition(-scores, want - 1)[:want]
                    order = top[np.argsort(-scores[top], kind="stable")]
                hits: list[SearchHit] = []
                for r in order:
                    sid = block.ids[int(r)]
                    if not filtered or _matches(self._meta[sid], flt):
                        hits.append(self._hit(sid, float(scores[r])))
                        if len(hits) == k:
                            return hits
                if want >= n:
                    return hits
                want *= 4

    def text(self, flt: SearchFilter, *, query: str, k: int) -> list[SearchHit]:
        expr = fts_query(query)
        if expr is None or k <= 0:
            return []
        sql = (
            "SELECT d.segment_id, -bm25(docs_fts) AS score "
            "FROM docs_fts JOIN docs d ON d.rowid = docs_fts.rowid "
            "WHERE docs_fts MATCH ? AND d.tenant_id = ? AND d.index_id = ?"
        )
        args: list[Any] = [expr, flt.tenant_id, flt.index_id]
        if flt.media_type is not None:
            sql += " AND d.media_type = ?"
            args.append(flt.media_type)
        for key, value in sorted(flt.user_metadata.items()):
            # Both sides through json_extract, so types compare as in Python: 1 != "1".
            sql += " AND json_extract(d.user_metadata, ?) = json_extract(?, '$')"
            args += ["$." + json.dumps(key), json.dumps(value)]
        sql += " ORDER BY score DESC, d.segment_id LIMIT ?"
        args.append(k)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
            return [self._hit(sid, float(score)) for sid, score in rows if sid in self._meta]
