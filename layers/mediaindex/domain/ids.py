"""Opaque, unguessable, time-sortable ids with a type prefix (`idx_`, `ast_`, `tsk_`, `seg_`, `key_`).

48 bits of milliseconds then 80 random bits, in Crockford base32: ids sort by creation time (so
cursors over ids are stable) and cannot be guessed across tenants."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
PREFIXES = ("idx", "ast", "tsk", "seg", "key", "ten", "job", "req", "upl", "rdx")


def _b32(n: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[n & 31])
        n >>= 5
    return "".join(reversed(out))


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}_{_b32(ms, 10)}{_b32(secrets.randbits(80), 16)}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
