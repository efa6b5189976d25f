"""Waiting for uploaded assets to settle (ready or failed), telling of each change, and why one
failed."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from mediaindex.cli.errors import err
from mediaindex.cli.output import clip, terminal_width

if TYPE_CHECKING:
    from mediaindex.client import Client

SETTLED = ("ready", "failed")


def failure_reason(asset: dict[str, Any]) -> str | None:
    """Why an asset (or one of its features) failed, from its error or its feature states."""
    error = asset.get("error")
    if error:
        reason = f"{error.get('code')}: {error.get('message')}"
    else:
        reason = "; ".join(
            f"{name} failed: {state.get('error') or state.get('reason') or 'no reason given'}"
            for name, state in (asset.get("features") or {}).items()
            if state.get("state") == "failed"
        )
    return " ".join(reason.split()) or None  # the tools' messages span lines


def _states(asset: dict[str, Any]) -> str:
    return " ".join(f"{f}={s['state']}" for f, s in (asset.get("features") or {}).items())


def wait_settled(client: Client, labels: dict[str, str], *, timeout_s: float) -> dict[str, dict[str, Any]]:
    """Polls the assets (id -> label) until each is ready or failed, telling of each change on
    stderr: a line per change, or one live line on a terminal. Returns the last state of each;
    those still processing at `timeout_s` are returned as they are."""
    tty = sys.stderr.isatty()
    pending = dict(labels)
    last: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    live_id = ""  # on a terminal: the pending asset whose line is shown live
    while pending:
        found = client.get_assets(list(pending))
        for asset_id, label in list(pending.items()):
            asset = found.get(asset_id) or {
                "id": asset_id,
                "status": "failed",
                "error": {"code": "asset_not_found", "message": "deleted while processing"},
            }
            last[asset_id] = asset
            line = f"  {label}  {asset['status']}  {_states(asset)}".rstrip()
            settled = asset["status"] in SETTLED
            if settled:
                del pending[asset_id]
            if seen.get(asset_id) == line:
                continue
            seen[asset_id] = line
            if not tty:
                err(line)
            elif settled:
                sys.stderr.write(f"\r\x1b[K{line}\n")
            else:
                live_id = asset_id
        if tty:
            if live_id not in pending:
                live_id = next(iter(pending), "")
            status = (
                f"[{len(labels) - len(pending)}/{len(labels)} settled] {seen[live_id].strip()}"
                if live_id
                else ""
            )
            sys.stderr.write(f"\r\x1b[K{clip(status, terminal_width() - 1)}")
            sys.stderr.flush()
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return last
