"""On-disk cache of one vector block: derived from SQLite, rebuilt from it whenever it cannot be trusted.

A block directory holds the stored segment (the float32 rows as a raw file, opened with numpy.memmap, so
reopening reads no vector; their rowids; the inverted lists), a state file (tombstones and the delta rows
written since), and header.json naming those files with the SQLite generation they reflect. Every data
file gets a new name and is fsynced before the header is atomically replaced, so a crash at any point
leaves either the old header (an older generation: a mismatch, so a rebuild) or the new one. `read`
returns None, never a wrong block, for a missing, stale, truncated or garbled cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mediaindex.adapters.local.ivf_lists import IvfLists
from mediaindex.adapters.local.vector_block import Built, Segment, VectorBlock

_FORMAT = 1
_HEADER = "header.json"
_CHUNK = 65_536


def block_dir(root: Path, key: tuple[str, ...]) -> Path:
    return root / hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()[:24]


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _save_npz(path: Path, **arrays: Any) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).tobytes())


def write_segment(d: Path, built: Built) -> tuple[str, Segment]:
    """Writes the rows list by list into new files; returns their token and the segment mapped back."""
    d.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    dim = built.vecs.shape[1]
    with open(d / f"main-{token}.f32", "wb") as f:
        for i in range(0, len(built.order), _CHUNK):
            f.write(np.ascontiguousarray(built.vecs[built.order[i : i + _CHUNK]], np.float32).tobytes())
        f.flush()
        os.fsync(f.fileno())
    rowids = built.rowids[built.order]
    ivf = built.ivf
    _save_npz(
        d / f"main-{token}.npz",
        rowids=rowids,
        centroids=ivf.centroids if ivf else np.empty((0, dim), np.float32),
        offsets=ivf.offsets if ivf else np.empty(0, np.int64),
    )
    return token, Segment(_map(d / f"main-{token}.f32", len(rowids), dim), rowids, ivf)


def _map(path: Path, rows: int, dim: int) -> np.ndarray:
    if path.stat().st_size != rows * dim * 4:
        raise ValueError(f"{path.name}: size does not match {rows} x {dim}")
    if rows == 0:
        return np.empty((0, dim), np.float32)
    return np.memmap(path, dtype=np.float32, mode="r", shape=(rows, dim))


def write_state(d: Path, token: str, block: VectorBlock) -> None:
    """Stores the tombstones and delta of `block` beside segment `token`, then points the header at them."""
    drow, dvec, dlist = block.delta()
    state = f"state-{uuid.uuid4().hex[:12]}.npz"
    _save_npz(d / state, dead=block.dead, delta_rowids=drow, delta_vecs=dvec, delta_lists=dlist)
    header = {
        "format": _FORMAT,
        "gen": block.gen,
        "dim": block.dim,
        "main": token,
        "rows": len(block.main.rowids),
        "rowids_crc": _crc(block.main.rowids),
        "state": state,
    }
    tmp = d / f"{_HEADER}.{uuid.uuid4().hex[:8]}.tmp"
    _fsync_write(tmp, json.dumps(header).encode())
    os.replace(tmp, d / _HEADER)
    keep = {_HEADER, f"main-{token}.f32", f"main-{token}.npz", state}
    for p in d.iterdir():
        if p.name not in keep:
            p.unlink(missing_ok=True)


def read(d: Path, *, gen: int, dim: int) -> tuple[str, VectorBlock] | None:
    """The cached block if its header names generation `gen` and every file checks out, else None."""
    try:
        h = json.loads((d / _HEADER).read_bytes())
        if h["format"] != _FORMAT or h["gen"] != gen or h["dim"] != dim:
            return None
        token, rows = str(h["main"]), int(h["rows"])
        with np.load(d / f"main-{token}.npz") as z:
            rowids, centroids, offsets = z["rowids"], z["centroids"], z["offsets"]
        if rowids.shape != (rows,) or _crc(rowids) != h["rowids_crc"]:
            return None
        ivf = None
        if len(centroids):
            if centroids.shape[1] != dim or offsets.shape != (len(centroids) + 1,) or offsets[-1] != rows:
                return None
            ivf = IvfLists(centroids.astype(np.float32), offsets.astype(np.int64))
        segment = Segment(_map(d / f"main-{token}.f32", rows, dim), rowids.astype(np.int64), ivf)
        with np.load(d / str(h["state"])) as z:
            dead, drow, dvec, dlist = z["dead"], z["delta_rowids"], z["delta_vecs"], z["delta_lists"]
        if dead.shape != (rows,) or dvec.shape != (len(drow), dim) or dlist.shape != drow.shape:
            return None
        if ivf is not None and len(dlist) and not 0 <= dlist.min() <= dlist.max() < ivf.count:
            return None
        block = VectorBlock(
            dim, gen, segment, dead, drow.astype(np.int64), dvec.astype(np.float32), dlist.astype(np.int32)
        )
        return token, block
    except (OSError, ValueError, KeyError, TypeError, EOFError, zlib.error, zipfile.BadZipFile):
        return None


def remove(d: Path) -> None:
    shutil.rmtree(d, ignore_errors=True)
