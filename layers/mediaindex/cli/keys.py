"""`mediaindex keys`: its parser, and `keys create --tenant`, an admin key made straight in the
local data dir and printed once. The remote actions (through /v1/keys) are in admin_keys.py."""

from __future__ import annotations

import argparse
from typing import Any

from mediaindex.cli.admin_keys import (
    cmd_keys_list,
    cmd_keys_revoke,
    cmd_keys_rotate,
    create_remote,
    expiry,
    overlap,
)
from mediaindex.cli.errors import EXIT_USAGE, CliError, err
from mediaindex.cli.local_server import create_local_key
from mediaindex.cli.target import add_connection, load_settings
from mediaindex.domain.keys import KeyScope

_REMOTE_ONLY = ("scope", "name", "expires_at", "url", "api_key")


def cmd_keys_create(args: argparse.Namespace) -> int:
    if args.remote:
        return create_remote(args)
    given = [f"--{name.replace('_', '-')}" for name in _REMOTE_ONLY if getattr(args, name) is not None]
    if given:
        raise CliError(EXIT_USAGE, f"{', '.join(given)} go with --remote, not --tenant")
    tenant, key_id, raw = create_local_key(load_settings(args), args.tenant)
    err(f"created key {key_id} for tenant {tenant}; it is shown only once:")
    print(raw)
    return 0


def register(sub: Any) -> None:
    k = sub.add_parser(
        "keys", help="API keys: made in the local data dir, or managed on a server"
    ).add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    kc = k.add_parser(
        "create",
        help="create a key, printed once: an admin key in the local data dir (--tenant), "
        "or one of your tenant's through the API (--remote, with an admin key)",
    )
    where = kc.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--tenant", help="the tenant (account) of a key made in the local data dir; created when new"
    )
    where.add_argument(
        "--remote", action="store_true", help="create it through POST /v1/keys for the --api-key's tenant"
    )
    kc.add_argument("--runtime", choices=["local", "aws"], default=None, help="runtime (MEDIAINDEX_RUNTIME)")
    kc.add_argument(
        "--scope",
        choices=[s.value for s in KeyScope],
        default=None,
        help="with --remote: what the key may call (default read_write; docs/tenants.md)",
    )
    kc.add_argument("--name", default=None, help="with --remote: a label to tell keys apart")
    kc.add_argument(
        "--expires-at",
        type=expiry,
        default=None,
        metavar="ISO8601",
        help="with --remote: when the key stops working, with its offset (2030-01-01T00:00:00Z)",
    )
    add_connection(kc)
    kc.set_defaults(fn=cmd_keys_create)

    kl = k.add_parser("list", help="list the tenant's keys, revoked ones included, never their secrets")
    add_connection(kl)
    kl.add_argument("--json", action="store_true", help="print the keys as the API returns them")
    kl.set_defaults(fn=cmd_keys_list)

    kr = k.add_parser("revoke", help="revoke a key: refused from the next request on")
    kr.add_argument("key_id", metavar="KEY_ID", help="the key's id (key_...), as `keys list` shows it")
    add_connection(kr)
    kr.set_defaults(fn=cmd_keys_revoke)

    kt = k.add_parser("rotate", help="replace a key: the new one is printed once, the old one works a while")
    kt.add_argument("key_id", metavar="KEY_ID", help="the key's id (key_...), as `keys list` shows it")
    kt.add_argument(
        "--overlap",
        type=overlap,
        default=overlap("24h"),
        metavar="DURATION",
        help="how long the old key keeps working: seconds, or 90m, 24h, 7d (0 to 7d; default 24h)",
    )
    add_connection(kt)
    kt.set_defaults(fn=cmd_keys_rotate)
