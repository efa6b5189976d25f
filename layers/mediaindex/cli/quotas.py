"""`mediaindex quotas show|set`: the tenant's quotas and their use, through /v1/quotas
(docs/tenants.md). `set` replaces the tenant's own quotas, as PUT does."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mediaindex.cli.errors import EXIT_USAGE, CliError
from mediaindex.cli.output import table, terminal_width, when
from mediaindex.cli.target import add_connection, client_for

# The API's fields: the number each takes, and what it bounds (for --help).
QUOTAS: dict[str, tuple[type[int] | type[float], str]] = {
    "max_stored_bytes": (int, "bytes of originals and derivatives"),
    "max_media_hours_per_day": (float, "hours of media processed per UTC day"),
    "max_concurrent_tasks": (int, "tasks queued or processing at once"),
    "requests_per_minute": (int, "requests per minute, all the tenant's keys together"),
}
DEFAULT = "default"


def _number(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float | None:
        if text == DEFAULT:
            return None
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number or {DEFAULT!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError("must be 0 or more")
        return value

    return parse


def _amount(value: float | None) -> str:
    if value is None:
        return "none"
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _show(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    rows = [
        [u["name"], _amount(u["limit"]), _amount(u["used"]), when(u.get("resets_at"))]
        for u in answer["usage"]
    ]
    print("\n".join(table(["quota", "limit", "used", "resets_at"], rows, width=terminal_width())))


def cmd_quotas_show(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        _show(client.request("GET", "/v1/quotas"), args.json)
    return 0


def cmd_quotas_set(args: argparse.Namespace) -> int:
    given = {name: getattr(args, name) for name in QUOTAS if getattr(args, name) is not ...}
    if not given:
        options = ", ".join(f"--{name.replace('_', '-')}" for name in QUOTAS)
        raise CliError(EXIT_USAGE, f"give at least one of {options}")
    # PUT replaces the tenant's own quotas: one not given is sent as null (the operator's default).
    body = {name: given.get(name) for name in QUOTAS}
    with client_for(args) as client:
        _show(client.request("PUT", "/v1/quotas", json=body), args.json)
    return 0


def register(sub: Any) -> None:
    q = sub.add_parser("quotas", help="the tenant's quotas and their use").add_subparsers(
        dest="quotas_command", required=True, metavar="ACTION"
    )
    qs = q.add_parser("show", help="each quota in force (null: no limit) and its use now")
    qs.set_defaults(fn=cmd_quotas_show)
    qp = q.add_parser(
        "set",
        help="replace the tenant's own quotas (an admin key); one left out falls back to the "
        "operator's default",
    )
    for name, (kind, what) in QUOTAS.items():
        qp.add_argument(
            f"--{name.replace('_', '-')}",
            type=_number(kind),
            default=...,
            metavar="N",
            help=f"{what}; {DEFAULT!r}: the operator's default",
        )
    qp.set_defaults(fn=cmd_quotas_set)
    for action in (qs, qp):
        action.add_argument("--json", action="store_true", help="print the answer as the API returns it")
        add_connection(action)
