"""`mediaindex status`: the server's health, and its usage when an API key is given."""

from __future__ import annotations

import argparse
import json
import os

from mediaindex.cli.errors import EXIT_CONNECTION, CliError
from mediaindex.cli.target import KEY_ENV, base_url, client_for


def cmd_status(args: argparse.Namespace) -> int:
    import httpx

    base = base_url(args)
    try:
        health = httpx.get(f"{base}/v1/health", timeout=5).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as e:
        raise CliError(EXIT_CONNECTION, f"no mediaindex server at {base}: {e}") from e
    print(json.dumps({"url": base, **health}))
    if args.api_key or os.environ.get(KEY_ENV):
        with client_for(args) as client:
            usage = client.request("GET", "/v1/usage")
            active = client.request("GET", "/v1/tasks/active")["data"]
        print(json.dumps({"usage": usage, "active_tasks": len(active)}))
    return 0
