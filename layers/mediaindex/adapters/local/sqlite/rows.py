"""What the SQLite repositories share: opaque cursors, newest-first pages, and the asset row, which
two aggregates write (assets themselves, and tasks with their asset in one transaction), with the
usage counters each write changes (usage.py).

Entities are stored as JSON documents (`doc`, pydantic's model_dump_json) plus the columns that
queries filter, order or join on (schema: migrations/001_init.sql)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from mediaindex.adapters.local.sqlite.usage import add_usage
from mediaindex.domain.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.domain.models import Asset, Page
from mediaindex.ports.assets import usage_change

E = TypeVar("E")
Row = tuple[Any, ...]

# Ids are time-sortable, so `ORDER BY id DESC` is newest first and the last id served is the cursor.
_ABOVE_EVERY_ID = "\U0010ffff"


# Cursors and pages ----------------------------------------------------------------------------------
def encode_cursor(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_invalid() -> ValidationError:
    return ValidationError("cursor is not valid", code="cursor_invalid", field="cursor")


_MAX_CURSOR_ID = 128


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position a cursor names ({"id": ..., maybe more}); None for the first page. Anything
    else a client sends (deep nesting, a lone surrogate SQLite cannot bind) is `cursor_invalid`."""
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError) as e:
        raise cursor_invalid() from e
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise cursor_invalid()
    if not all(_bindable(v) for v in data.values()):
        raise cursor_invalid()
    return data


def _bindable(value: object) -> bool:
    """What our cursors hold and SQLite binds: short ASCII ids, 64-bit ints, finite floats."""
    if isinstance(value, str):
        return len(value) <= _MAX_CURSOR_ID and value.isascii()
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, float) and math.isfinite(value)


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValidationError("limit must be at least 1", field="limit")


def newest_first(
    conn: sqlite3.Connection,
    select: str,
    parse: Callable[[Row], E],
    *,
    equal: Mapping[str, Any],
    also: Sequence[str] = (),
    limit: int,
    cursor: str | None,
) -> Page[E]:
    """One page of `SELECT id, {select} WHERE ... ORDER BY id DESC`: `select` names the columns after
    `id` and the table, `parse` gets a row without its id. The WHERE holds `column = value` for each
    entry of `equal` whose value is not None (names are the caller's literals, never input) and the
    fixed conditions `also`. Reads one row beyond the page so `next_cursor` is None exactly at the end."""
    check_limit(limit)
    after = decode_cursor(cursor)
    used = {column: value for column, value in equal.items() if value is not None}
    where = [*(f"{column} = ?" for column in used), *also, "id < ?"]
    sql = f"SELECT id, {select} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    below = after["id"] if after else _ABOVE_EVERY_ID
    rows = conn.execute(sql, (*used.values(), below, limit + 1)).fetchall()
    items = [parse(tuple(r[1:])) for r in rows[:limit]]
    nxt = encode_cursor({"id": rows[limit - 1][0]}) if len(rows) > limit else None
    return Page[E](data=items, next_cursor=nxt)


# The asset row -------------------------------------------------------------------------------------
def asset_not_found(asset_id: str) -> NotFoundError:
    return NotFoundError(f"asset {asset_id} not found", code="asset_not_found")


def find_asset(conn: sqlite3.Connection, tenant_id: str, asset_id: str) -> Asset | None:
    """The tenant's asset; another tenant's reads as missing."""
    row = conn.execute(
        "SELECT doc FROM assets WHERE id = ? AND tenant_id = ?", (asset_id, tenant_id)
    ).fetchone()
    return Asset.model_validate_json(row[0]) if row else None


def load_asset(tx: sqlite3.Connection, tenant_id: str, asset_id: str) -> Asset:
    """`find_asset`, or NotFoundError(`asset_not_found`)."""
    asset = find_asset(tx, tenant_id, asset_id)
    if asset is None:
        raise asset_not_found(asset_id)
    return asset


def insert_asset(tx: sqlite3.Connection, stored: Asset) -> None:
    try:
        tx.execute(
            "INSERT INTO assets (id, tenant_id, index_id, status, media_type, version, doc)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                stored.id,
                stored.tenant_id,
                stored.index_id,
                stored.status.value,
                stored.media_type.value if stored.media_type else None,
                stored.version,
                stored.model_dump_json(),
            ),
        )
    except sqlite3.IntegrityError as e:
        raise ConflictError(f"asset {stored.id} exists", code="asset_already_exists") from e
    add_usage(tx, stored.tenant_id, stored.index_id, usage_change(None, stored))


def write_asset(tx: sqlite3.Connection, asset: Asset, current: Asset) -> Asset:
    """Overwrites the asset's row if it is still `current` (its version, and the asset's tenant),
    with the usage counters it changes; returns what was stored, at the next version.
    ConflictError(`version_conflict`) otherwise."""
    expected_version = current.version
    stored = asset.model_copy(update={"version": expected_version + 1})
    cur = tx.execute(
        "UPDATE assets SET status = ?, media_type = ?, version = ?, doc = ?"
        " WHERE id = ? AND tenant_id = ? AND version = ?",
        (
            stored.status.value,
            stored.media_type.value if stored.media_type else None,
            stored.version,
            stored.model_dump_json(),
            stored.id,
            stored.tenant_id,
            expected_version,
        ),
    )
    if cur.rowcount != 1:
        raise ConflictError(f"asset {asset.id} changed meanwhile", code="version_conflict")
    add_usage(tx, current.tenant_id, current.index_id, usage_change(current, stored))
    return stored
