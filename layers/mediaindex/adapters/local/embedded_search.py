"""Embedded search index: no server, persistent in the local data dir.

SQLite (its own file, WAL) is the source of truth: the documents, an FTS5 table (porter stemmer) for
BM25 over transcript text, every vector as a float32 blob, and per (tenant, index, modality, model_id)
block its dimension and a generation, changed in the same transaction as every write to the block.

The vectors are also kept per block in a derived cache (vector_cache: the rows memory-mapped, so
reopening reads none of them), loaded on a block's first use and trusted only when its header carries
the block's generation; otherwise, or when a file is missing or garbled, the block is rebuilt from
SQLite. Writes reach memory right after their commit (tombstones and a delta: vector_block), and the
cache is rewritten at compaction and on close, so a crash in between costs a rebuild, never data.
A k-NN query searches the block of its own tenant and index only, exactly below ANN_MIN_ROWS rows and
over inverted lists (ivf_lists) above; media_type/user_metadata filters walk a growing window of the
ranking and, when few rows pass, score exactly the rows SQLite says pass. Hits are read from SQLite by
rowid, so no per-document Python object is held.

Thread-safe: one lock guards the connection and the blocks (reads too: a consistent view matters more
than parallel readers here)."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mediaindex.adapters.local import vector_cache
from mediaindex.adapters.local.vector_block import Built, Segment, VectorBlock, build
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
-- gen: a random number set by every write to the block, so a cache naming it is that state exactly
-- (a counter could repeat after a database restored from backup).
CREATE TABLE IF NOT EXISTS vector_blocks (
    tenant_id TEXT NOT NULL,
    index_id TEXT NOT NULL,
    modality TEXT NOT NULL,
    model_id TEXT NOT NULL,
    dim INTEGER NOT NULL,
    gen INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, index_id, modality, model_id)
);
-- next_vector_rowid: vectors.rowid is handed out here and never reused, so the cache can keep rows
-- sorted by it. (VACUUM could renumber rowids; this index never runs it.)
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# Databases written before vector_blocks existed get it filled once from their vectors.
_MIGRATE = """
INSERT OR IGNORE INTO vector_blocks
    SELECT d.tenant_id, d.index_id, v.modality, v.model_id, max(v.dim), 0
    FROM vectors v JOIN docs d ON d.segment_id = v.segment_id GROUP BY 1, 2, 3, 4;
INSERT OR IGNORE INTO counters SELECT 'next_vector_rowid', coalesce(max(rowid), 0) + 1 FROM vectors;
PRAGMA user_version = 1;
"""

_WORD = re.compile(r"\w+", re.UNICODE)
_HIT_COLUMNS = 'd.segment_id, d.asset_id, d.start, d."end", d.text, d.keyframe_key'
_BLOCK_ROWS = (
    "FROM vectors v JOIN docs d ON d.segment_id = v.segment_id "
    "WHERE d.tenant_id = ? AND d.index_id = ? AND v.modality = ? AND v.model_id = ?"
)
# A filtered query walks the ranking up to this many candidates before scoring the passing rows exactly.
FILTER_WALK_LIMIT = 4096

BlockKey = tuple[str, str, str, str]  # tenant_id, index_id, modality, model_id
Row = tuple[Any, ...]


def _normalise(v: Iterable[float] | npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(a))
    return a / n if n > 0 else a


def _matches(media_type: str, user_metadata: str, flt: SearchFilter) -> bool:
    if flt.media_type is not None and media_type != flt.media_type:
        return False
    if not flt.user_metadata:
        return True
    meta = json.loads(user_metadata)
    return all(meta.get(k) == v for k, v in flt.user_metadata.items())


def _filter_sql(flt: SearchFilter) -> tuple[str, list[Any]]:
    """The media_type/user_metadata part of a filter as SQL over `docs d`."""
    sql, args = "", []
    if flt.media_type is not None:
        sql += " AND d.media_type = ?"
        args.append(flt.media_type)
    for key, value in sorted(flt.user_metadata.items()):
        # Both sides through json_extract, so types compare as in Python: 1 != "1".
        sql += " AND json_extract(d.user_metadata, ?) = json_extract(?, '$')"
        args += ["$." + json.dumps(key), json.dumps(value)]
    return sql, args


def fts_query(text: str) -> str | None:
    """User text -> an FTS5 expression: its content words (stopwords dropped, as OpenSearch's `english`
    analyzer does) each quoted, so FTS syntax in the input is inert, and OR-ed as `match` does."""
    words = [p for w in content_words(text) for p in _WORD.findall(w)]
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))


def _new_gen() -> int:
    return secrets.randbits(62) + 1


class EmbeddedSearchIndex(SearchIndex):
    def __init__(self, dir: Path, *, filename: str = "search.db") -> None:
        dir.mkdir(parents=True, exist_ok=True)
        self.path = dir / filename
        self._cache_root = dir / f"{Path(filename).stem}.vectors"
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if self._db.execute("PRAGMA user_version").fetchone()[0] < 1:
            self._db.executescript("BEGIN;" + _MIGRATE + "COMMIT;")
        # Only the block catalogue is read at open; a block's vectors load on its first use.
        self._catalog: dict[BlockKey, tuple[int, int]] = {
            (t, i, m, mo): (dim, gen)
            for t, i, m, mo, dim, gen in self._db.execute("SELECT * FROM vector_blocks")
        }
        self._blocks: dict[BlockKey, VectorBlock] = {}
        self._tokens: dict[BlockKey, str | None] = {}  # the block's stored segment files, None: memory only
        self._flushed: dict[BlockKey, int] = {}  # the generation the block's cache header names

    def close(self) -> None:
        with self._lock:
            for key, block in list(self._blocks.items()):
                if self._tokens.get(key) is None or block.needs_compaction(closing=True):
                    self._compact(key)
                elif self._flushed.get(key) != block.gen:
                    self._save_state(key)
            self._db.close()

    # Blocks: memory and cache

    def _block(self, key: BlockKey) -> VectorBlock | None:
        block = self._blocks.get(key)
        if block is not None or key not in self._catalog:
            return block
        dim, gen = self._catalog[key]
        cached = vector_cache.read(vector_cache.block_dir(self._cache_root, key), gen=gen, dim=dim)
        if cached is None:
            return self._rebuild(key)
        self._tokens[key], self._blocks[key] = cached
        self._flushed[key] = gen
        return cached[1]

    def _rebuild(self, key: BlockKey) -> VectorBlock:
        dim, gen = self._catalog[key]
        (n,) = self._db.execute(f"SELECT count(*) {_BLOCK_ROWS}", key).fetchone()
        # Straight into one array: a list of a million blobs would leave the heap that size for good.
        vecs = np.empty((n, dim), np.float32)
        rowids = np.empty(n, np.int64)
        rows = self._db.execute(f"SELECT v.rowid, v.vec {_BLOCK_ROWS} ORDER BY v.rowid", key)
        for i, (rowid, blob) in enumerate(rows):
            rowids[i] = rowid
            vecs[i] = np.frombuffer(blob, np.float32)
        return self._store(key, build(vecs, rowids), gen)

    def _compact(self, key: BlockKey) -> None:
        block = self._blocks[key]
        self._store(key, block.compacted(), block.gen)

    def _store(self, key: BlockKey, built: Built, gen: int) -> VectorBlock:
        """Makes `built` the block's stored segment: on disk and mapped back, or in memory when the
        cache cannot be written (it is only a cache)."""
        token: str | None
        try:
            token, segment = vector_cache.write_segment(vector_cache.block_dir(self._cache_root, key), built)
        except OSError:
            token = None
            segment = Segment(
                np.ascontiguousarray(built.vecs[built.order]), built.rowids[built.order], built.ivf
            )
        block = self._blocks[key] = VectorBlock(self._catalog[key][0], gen, segment)
        self._tokens[key] = token
        self._save_state(key)
        return block

    def _save_state(self, key: BlockKey) -> None:
        token, block = self._tokens.get(key), self._blocks[key]
        if token is None:
            return
        try:
            vector_cache.write_state(vector_cache.block_dir(self._cache_root, key), token, block)
        except OSError:
            return  # the next open finds the older generation and rebuilds
        self._flushed[key] = block.gen

    def _drop(self, key: BlockKey) -> None:
        for d in (self._catalog, self._blocks, self._tokens, self._flushed):
            d.pop(key, None)
        vector_cache.remove(vector_cache.block_dir(self._cache_root, key))

    # Writes

    def _old_vectors(self, sids: list[str]) -> dict[BlockKey, list[int]]:
        """The vector rowids the given segments hold now, by block."""
        out: dict[BlockKey, list[int]] = defaultdict(list)
        for i in range(0, len(sids), 500):
            chunk = sids[i : i + 500]
            for rowid, *key in self._db.execute(
                "SELECT v.rowid, d.tenant_id, d.index_id, v.modality, v.model_id FROM vectors v "  # noqa: S608
                "JOIN docs d ON d.segment_id = v.segment_id "
                f"WHERE v.segment_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                out[tuple(key)].append(rowid)
        return out

    def _new_generations(
        self, touched: Iterable[BlockKey], dims: dict[BlockKey, int]
    ) -> dict[BlockKey, int | None]:
        """Inside the write's transaction: a new generation for every touched block; None for a block
        the write left empty, whose catalogue row goes (so its dimension may change later)."""
        gens: dict[BlockKey, int | None] = {}
        for key in touched:
            if not self._db.execute(f"SELECT 1 {_BLOCK_ROWS} LIMIT 1", key).fetchone():
                self._db.execute(
                    "DELETE FROM vector_blocks "
                    "WHERE tenant_id = ? AND index_id = ? AND modality = ? AND model_id = ?",
                    key,
                )
                gens[key] = None
                continue
            gen = gens[key] = _new_gen()
            self._db.execute(
                "INSERT INTO vector_blocks VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(tenant_id, index_id, modality, model_id) DO UPDATE SET gen = excluded.gen",
                (*key, dims[key], gen),
            )
        return gens

    def _apply(
        self,
        gens: dict[BlockKey, int | None],
        dims: dict[BlockKey, int],
        removed: dict[BlockKey, list[int]],
        added: dict[BlockKey, list[tuple[int, npt.NDArray[np.float32]]]],
    ) -> None:
        """After the commit: memory follows, block by block."""
        for key, gen in gens.items():
            if gen is None:
                self._drop(key)
                continue
            self._catalog[key] = (dims[key], gen)
            block = self._blocks.get(key)
            if block is None:
                block = self._blocks[key] = VectorBlock(dims[key], gen, Segment.empty(dims[key]))
                self._tokens[key] = None
            block.remove(np.asarray(removed.get(key, []), np.int64))
            rows = added.get(key, [])
            if rows:
                block.add(np.asarray([r for r, _ in rows], np.int64), np.stack([v for _, v in rows]))
            block.gen = gen
            if block.needs_compaction():
                self._compact(key)

    def upsert(self, docs: list[SearchDoc]) -> None:
        if not docs:
            return
        # A batch may name a segment twice: the last one wins.
        latest = {d.segment_id: d for d in docs}
        prepared = [
            (d, {m: (model, _normalise(v)) for m, (model, v) in d.vectors.items()}) for d in latest.values()
        ]
        with self._lock:
            # Dimensions are checked before anything is written, so a bad batch changes nothing.
            dims = {key: dim for key, (dim, _) in self._catalog.items()}
            for d, vecs in prepared:
                for m, (model, v) in vecs.items():
                    dim = dims.setdefault((d.tenant_id, d.index_id, m, model), int(v.shape[0]))
                    if dim != v.shape[0]:
                        raise ValidationError(
                            f"vector of {v.shape[0]} dims for model {model!r}, which has {dim}",
                            field="vectors",
                        )
            removed = self._old_vectors(list(latest))
            # Every existing block the write touches is loaded before the commit, so that memory can
            # follow the commit (loaded after it, a block would already hold the write).
            new_keys = {
                (d.tenant_id, d.index_id, m, model) for d, v in prepared for m, (model, _) in v.items()
            }
            for key in removed.keys() | new_keys:
                self._block(key)
            added: dict[BlockKey, list[tuple[int, npt.NDArray[np.float32]]]] = defaultdict(list)
            self._db.execute("BEGIN")
            try:
                self._delete_rows(list(latest))
                (rowid,) = self._db.execute(
                    "SELECT value FROM counters WHERE name = 'next_vector_rowid'"
                ).fetchone()
                for d, vecs in prepared:
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
                            "INSERT INTO vectors (rowid, segment_id, modality, model_id, dim, vec) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (rowid, d.segment_id, m, model, int(v.shape[0]), v.tobytes()),
                        )
                        added[(d.tenant_id, d.index_id, m, model)].append((rowid, v))
                        rowid += 1
                self._db.execute("UPDATE counters SET value = ? WHERE name = 'next_vector_rowid'", (rowid,))
                gens = self._new_generations({**removed, **added}, dims)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._apply(gens, dims, removed, added)

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

    def _delete_where(self, where: str, args: tuple[str, ...]) -> None:
        with self._lock:
            sids = [r[0] for r in self._db.execute(f"SELECT segment_id FROM docs WHERE {where}", args)]  # noqa: S608
            if not sids:
                return
            removed = self._old_vectors(sids)
            for key in removed:
                self._block(key)
            dims = {key: dim for key, (dim, _) in self._catalog.items()}
            self._db.execute("BEGIN")
            try:
                self._delete_rows(sids)
                gens = self._new_generations(removed, dims)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._apply(gens, dims, removed, {})

    def delete_asset(self, tenant_id: str, asset_id: str, *, index_id: str | None = None) -> None:
        if index_id is None:
            self._delete_where("tenant_id = ? AND asset_id = ?", (tenant_id, asset_id))
        else:
            where = "tenant_id = ? AND index_id = ? AND asset_id = ?"
            self._delete_where(where, (tenant_id, index_id, asset_id))

    def delete_index(self, tenant_id: str, index_id: str) -> None:
        self._delete_where("tenant_id = ? AND index_id = ?", (tenant_id, index_id))

    # Queries

    def _docs_by_vector(self, rowids: Iterable[int]) -> dict[int, Row]:
        """vector rowid -> (hit columns..., media_type, user_metadata)."""
        ids = list(rowids)
        out: dict[int, Row] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for rowid, *row in self._db.execute(
                f"SELECT v.rowid, {_HIT_COLUMNS}, d.media_type, d.user_metadata FROM vectors v "  # noqa: S608
                f"JOIN docs d ON d.segment_id = v.segment_id WHERE v.rowid IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                out[rowid] = tuple(row)
        return out

    def _hits(self, ranked: list[tuple[int, float]], docs: dict[int, Row] | None = None) -> list[SearchHit]:
        docs = self._docs_by_vector(r for r, _ in ranked) if docs is None else docs
        return [_hit(docs[r], s) for r, s in ranked if r in docs]

    def knn(
        self, flt: SearchFilter, *, modality: str, model_id: str, vector: list[float], k: int
    ) -> list[SearchHit]:
        q = _normalise(vector)
        key = (flt.tenant_id, flt.index_id, modality, model_id)
        with self._lock:
            block = self._block(key)
            if block is None or k <= 0:
                return []
            if block.dim != q.shape[0]:
                raise ValidationError(
                    f"query vector has {q.shape[0]} dims; model {model_id!r} has {block.dim}", field="vector"
                )
            if flt.media_type is None and not flt.user_metadata:
                rowids, scores = block.search(q, k)
                if len(rowids) < min(k, block.live):  # the probed lists held too few live rows
                    rowids, scores = block.search(q, k, exact=True)
                return self._hits(list(zip(rowids.tolist(), scores.tolist(), strict=True)))
            return self._filtered_knn(key, block, q, flt, k)

    def _filtered_knn(
        self, key: BlockKey, block: VectorBlock, q: npt.NDArray[np.float32], flt: SearchFilter, k: int
    ) -> list[SearchHit]:
        # Walk the ranking in growing windows until k rows pass: cheap when most rows pass.
        want = min(max(4 * k, 64), FILTER_WALK_LIMIT)
        while True:
            rowids, scores = block.search(q, want)
            docs = self._docs_by_vector(rowids.tolist())
            passing = [
                (r, s)
                for r, s in zip(rowids.tolist(), scores.tolist(), strict=True)
                if r in docs and _matches(docs[r][6], docs[r][7], flt)
            ]
            if len(passing) >= k or (block.exact and len(rowids) < want):
                return self._hits(passing[:k], docs)
            if want >= FILTER_WALK_LIMIT:
                break
            want = min(4 * want, FILTER_WALK_LIMIT)
        # Few rows pass: score exactly those SQLite says pass.
        sql, args = _filter_sql(flt)
        ids = [r for (r,) in self._db.execute(f"SELECT v.rowid {_BLOCK_ROWS}{sql}", [*key, *args])]
        rowids, scores = block.score(q, np.asarray(ids, np.int64), k)
        return self._hits(list(zip(rowids.tolist(), scores.tolist(), strict=True)))

    def text(self, flt: SearchFilter, *, query: str, k: int) -> list[SearchHit]:
        expr = fts_query(query)
        if expr is None or k <= 0:
            return []
        sql, args = _filter_sql(flt)
        rank = (
            f"SELECT {_HIT_COLUMNS}, -bm25(docs_fts) AS score "  # noqa: S608
            "FROM docs_fts JOIN docs d ON d.rowid = docs_fts.rowid "
            f"WHERE docs_fts MATCH ? AND d.tenant_id = ? AND d.index_id = ?{sql} "
            "ORDER BY score DESC, d.segment_id LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(rank, [expr, flt.tenant_id, flt.index_id, *args, k]).fetchall()
        return [_hit(row[:6], row[6]) for row in rows]


def _hit(row: Row, score: float) -> SearchHit:
    """(segment_id, asset_id, start, end, text, keyframe_key, ...) + score -> a hit."""
    return SearchHit(row[0], row[1], row[2], row[3], float(score), row[4], row[5])
