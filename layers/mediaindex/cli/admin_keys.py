"""`mediaindex keys list|create --remote|revoke|rotate`: the tenant's API keys managed through
/v1/keys with an `admin` key (docs/tenants.md). A new key is printed once, on stdout alone."""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from typing import Any

from mediaindex.cli.errors import err
from mediaindex.cli.output import table, terminal_width, when
from mediaindex.cli.target import client_for
from mediaindex.domain.keys import MAX_OVERLAP_S

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def overlap(text: str) -> int:
    """--overlap: seconds, or a number with s, m, h or d; 0 to 7 days."""
    found = re.fullmatch(r"(\d+)([smhd]?)", text.strip().lower())
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 3600, 90m, 24h or 7d")
    seconds = int(found.group(1)) * _UNITS[found.group(2)]
    if seconds > MAX_OVERLAP_S:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than 7d ({MAX_OVERLAP_S} seconds)")
    return seconds


def expiry(text: str) -> str:
    """--expires-at: an ISO 8601 time with its offset (Z for UTC), as the API wants it."""
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if stamp.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset: add Z or +HH:MM")
    return stamp.isoformat()


def shown(key: dict[str, Any]) -> str:
    """How a key is told apart without its secret: its prefix and its last 4 characters."""
    return f"{key['prefix']}...{key.get('last4') or ''}"


def cmd_keys_list(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        keys = client.request("GET", "/v1/keys")["data"]
    if args.json:
        print(json.dumps(keys, indent=2))
        return 0
    rows = [
        [
            k["id"],
            k.get("name") or "-",
            k["scope"],
            shown(k),
            when(k.get("expires_at")),
            when(k.get("last_used_at")),
            "yes" if k["revoked"] else "no",
        ]
        for k in keys
    ]
    headers = ["id", "name", "scope", "key", "expires_at", "last_used_at", "revoked"]
    print("\n".join(table(headers, rows, width=terminal_width())))
    return 0


def create_remote(args: argparse.Namespace) -> int:
    fields = {"scope": args.scope, "name": args.name, "expires_at": args.expires_at}
    body = {name: value for name, value in fields.items() if value is not None}
    with client_for(args) as client:
        made = client.request("POST", "/v1/keys", json=body)
    ends = f", expires {when(made['expires_at'])}" if made.get("expires_at") else ""
    err(f"created {made['scope']} key {made['id']}{ends}; it is shown only once:")
    print(made["key"])
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        key = client.request("DELETE", f"/v1/keys/{args.key_id}")
    print(f"revoked {key['id']} ({shown(key)}) at {when(key.get('revoked_at'))}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    import httpx

    from mediaindex.client import ApiError

    with client_for(args) as client:
        new = client.request("POST", f"/v1/keys/{args.key_id}/rotate", json={"overlap_s": args.overlap})
        # The old key ends at now + overlap, or sooner if it was to expire sooner: ask, not guess.
        # The new key exists now, so a failure here must not lose it: fall back to the bound.
        try:
            ends = client.request("GET", f"/v1/keys/{args.key_id}").get("expires_at")
            until = f"until {when(ends)}"
        except (ApiError, httpx.HTTPError):
            until = f"for at most {args.overlap} s more"
    err(f"rotated {args.key_id} into {new['id']}; the old key works {until}. The new key is shown only once:")
    print(new["key"])
    return 0
