"""`mediaindex webhooks`: subscriptions, their delivery log, redelivery and re-enabling, through
/v1/webhooks (docs/webhooks.md). A new webhook's signing secret is printed once, on stdout alone."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mediaindex.cli.errors import err
from mediaindex.cli.output import page_limit, table, terminal_width, when
from mediaindex.cli.target import add_connection, client_for
from mediaindex.domain.webhooks import WebhookEvent


def _print(rows: list[dict[str, Any]], as_json: bool, headers: list[str], cells: Any) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        print("\n".join(table(headers, [cells(r) for r in rows], width=terminal_width())))


def _webhook_cells(w: dict[str, Any]) -> list[str]:
    state = "enabled" if w["enabled"] else f"disabled ({w.get('disabled_reason') or 'failing'})"
    return [w["id"], state, ",".join(w["events"]), w.get("description") or "-", w["url"]]


def cmd_webhooks_list(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        hooks = client.request("GET", "/v1/webhooks")["data"]
    _print(hooks, args.json, ["id", "state", "events", "description", "url"], _webhook_cells)
    return 0


def cmd_webhooks_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"url": args.target, "events": args.event}
    if args.description is not None:
        body["description"] = args.description
    with client_for(args) as client:
        made = client.request("POST", "/v1/webhooks", json=body)
    events = ", ".join(made["events"])
    err(f"created webhook {made['id']} for {events}; its signing secret is shown only once:")
    print(made["id"])
    print(made["secret"])
    return 0


def cmd_webhooks_delete(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        client.request("DELETE", f"/v1/webhooks/{args.webhook_id}")
    print(f"deleted {args.webhook_id}")
    return 0


def cmd_webhooks_enable(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        hook = client.request("POST", f"/v1/webhooks/{args.webhook_id}/enable")
    print(f"enabled {hook['id']}")
    return 0


def cmd_webhooks_deliveries(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        page = client.request(
            "GET", f"/v1/webhooks/{args.webhook_id}/deliveries", params={"limit": args.limit}
        )
    headers = ["id", "event", "state", "attempts", "status", "next_attempt_at", "last_error"]

    def cells(d: dict[str, Any]) -> list[str]:
        status = str(d["status_code"]) if d.get("status_code") is not None else "-"
        last = " ".join((d.get("last_error") or "").split())
        return [
            d["id"],
            d["event"],
            d["state"],
            str(d["attempts"]),
            status,
            when(d.get("next_attempt_at")),
            last,
        ]

    _print(page["data"], args.json, headers, cells)
    return 0


def cmd_webhooks_redeliver(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        d = client.request("POST", f"/v1/webhooks/{args.webhook_id}/deliveries/{args.delivery_id}/redeliver")
    print(
        f"redelivering {d['id']} ({d['event']}): {d['state']}, next attempt {when(d.get('next_attempt_at'))}"
    )
    return 0


def register(sub: Any) -> None:
    w = sub.add_parser(
        "webhooks", help="webhooks: signed POSTs to your URL when work settles"
    ).add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    wid = {"metavar": "WEBHOOK_ID", "help": "the webhook's id (whk_...), as `webhooks list` shows it"}

    wl = w.add_parser("list", help="list the tenant's webhooks, without their secrets")
    wl.add_argument("--json", action="store_true", help="print the webhooks as the API returns them")
    wl.set_defaults(fn=cmd_webhooks_list)

    wc = w.add_parser("create", help="subscribe a URL to events; prints its id, then its secret once")
    wc.add_argument(
        "target", metavar="TARGET_URL", help="where deliveries are POSTed: http(s), a public address"
    )
    wc.add_argument(
        "--event",
        action="append",
        required=True,
        choices=[e.value for e in WebhookEvent],
        help="an event to send, repeatable",
    )
    wc.add_argument("--description", default=None, help="a note for people")
    wc.set_defaults(fn=cmd_webhooks_create)

    wd = w.add_parser("delete", help="delete a webhook and its delivery log")
    wd.add_argument("webhook_id", **wid)
    wd.set_defaults(fn=cmd_webhooks_delete)

    wv = w.add_parser("deliveries", help="a webhook's delivery log, newest first")
    wv.add_argument("webhook_id", **wid)
    wv.add_argument("--limit", type=page_limit, default=50, help="how many deliveries (1..100, default 50)")
    wv.add_argument("--json", action="store_true", help="print the deliveries as the API returns them")
    wv.set_defaults(fn=cmd_webhooks_deliveries)

    wr = w.add_parser("redeliver", help="send a delivery again now, same id and body, fresh retries")
    wr.add_argument("webhook_id", **wid)
    wr.add_argument("delivery_id", metavar="DELIVERY_ID", help="the delivery's id (dlv_...)")
    wr.set_defaults(fn=cmd_webhooks_redeliver)

    we = w.add_parser("enable", help="turn a webhook disabled after failures back on")
    we.add_argument("webhook_id", **wid)
    we.set_defaults(fn=cmd_webhooks_enable)

    for action in (wl, wc, wd, wv, wr, we):
        add_connection(action)
