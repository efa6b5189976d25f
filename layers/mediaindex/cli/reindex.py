"""`mediaindex reindex`: rebuild an index into a new generation with other models, follow it,
cancel it, through /v1/indexes/{id}/reindex (docs/api.md, Re-indexing)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from mediaindex.cli.errors import EXIT_FAILED, EXIT_USAGE, CliError, err
from mediaindex.cli.output import clip, terminal_width
from mediaindex.cli.target import add_connection, client_for

if TYPE_CHECKING:
    from mediaindex.client import Client

ENDED = ("completed", "cancelled", "failed")


def describe(index: dict[str, Any]) -> str:
    """The index's latest re-index in one line (or that it has none)."""
    r = index.get("reindex")
    serving = f"generation {index['generation']}"
    if r is None:
        return f"{index['name']}: no re-index; {serving} (transcription {index['models']['transcription']})"
    line = f"{index['name']}: {_progress(r)} (transcription {r['models']['transcription']})"
    line += f"; search answers from {serving}"
    if r.get("error"):
        line += f"; {_reason(r['error'])}"
    return line


def _progress(r: dict[str, Any]) -> str:
    line = f"generation {r['generation']} {r['state']}: {r['assets_done']}/{r['assets_total']} assets rebuilt"
    if r["assets_failed"]:
        line += f", {r['assets_failed']} failed"
    return line + (", swapped" if r["swapped"] else "")


def _reason(error: dict[str, Any]) -> str:
    return f"{error['code']}: {' '.join(error['message'].split())}"  # one line, whatever the cause said


def _show(index: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(index, indent=2) if as_json else describe(index))


def wait_ended(client: Client, index: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
    """Polls the index until its re-index has ended, telling of each change on stderr (a line per
    change, or one live line on a terminal). Returns the index as last read, ended or not."""
    tty = sys.stderr.isatty()
    deadline = time.monotonic() + timeout_s
    seen = ""
    while True:
        line = _progress(index["reindex"])
        if line != seen:
            seen = line
            if tty:
                sys.stderr.write(f"\r\x1b[K{clip(line, terminal_width() - 1)}")
                sys.stderr.flush()
            else:
                err(f"  {line}")
        if index["reindex"]["state"] in ENDED or time.monotonic() > deadline:
            break
        time.sleep(0.5)
        # Each read also moves the re-index on (the API resumes one whose driver went away).
        index = client.request("GET", f"/v1/indexes/{index['id']}")
    if tty:
        sys.stderr.write("\n")
    return index


def _outcome(index: dict[str, Any], *, timeout_s: float) -> int:
    """Exit 0 for a completed re-index; a CliError saying why for any other."""
    r = index["reindex"]
    if r["state"] == "completed":
        return 0
    if r["state"] == "running":
        raise CliError(EXIT_FAILED, f"the re-index is still running after {timeout_s:g} s")
    # An ended re-index that did not complete always says why (ReindexOut.error).
    raise CliError(EXIT_FAILED, f"re-index {r['state']}: {_reason(r['error'])}")


def cmd_reindex(args: argparse.Namespace) -> int:
    if (args.cancel or args.status) and args.transcription is not None:
        raise CliError(EXIT_USAGE, "--transcription goes with starting a re-index, not --cancel or --status")
    if args.cancel and args.wait:
        raise CliError(EXIT_USAGE, "--wait goes with starting a re-index or --status, not --cancel")
    with client_for(args) as client:
        index = client.find_index(args.index)
        path = f"/v1/indexes/{index['id']}/reindex"
        if args.cancel:
            index = client.request("POST", f"{path}/cancel")
        elif not args.status:
            models = {} if args.transcription is None else {"transcription": args.transcription}
            index = client.request("POST", path, json={"models": models})
        if not args.wait or index.get("reindex") is None:
            _show(index, args.json)
            return 0
        index = wait_ended(client, index, timeout_s=args.timeout)
    _show(index, args.json)
    return _outcome(index, timeout_s=args.timeout)


def register(sub: Any) -> None:
    r = sub.add_parser(
        "reindex",
        help="rebuild an index with other models while search goes on; follow or cancel it",
    )
    r.add_argument("index", metavar="INDEX", help="the index's name or id (idx_...)")
    action = r.add_mutually_exclusive_group()
    action.add_argument("--cancel", action="store_true", help="cancel the running re-index")
    action.add_argument("--status", action="store_true", help="show the latest re-index, running or ended")
    r.add_argument(
        "--transcription",
        metavar="MODEL",
        default=None,
        help="the Whisper model of the new generation (default: the server's; "
        "GET /v1/capabilities lists those offered)",
    )
    r.add_argument(
        "--wait",
        action="store_true",
        help="follow the re-index until it ends: exit 0 when it completed, else 1",
    )
    r.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds --wait waits at most (default 1800)"
    )
    r.add_argument("--json", action="store_true", help="print the index as the API returns it")
    add_connection(r)
    r.set_defaults(fn=cmd_reindex)
