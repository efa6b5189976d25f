"""`mediaindex demo`: generated sample media ingested and searched, on the running server when
there is one, else on a server of its own in a data dir apart from the user's."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediaindex.cli.errors import EXIT_AUTH, CliError
from mediaindex.cli.local_server import create_local_key, free_port, local_server, wait_healthy
from mediaindex.cli.output import hits_table, progress, terminal_width
from mediaindex.cli.settle import wait_settled
from mediaindex.cli.target import KEY_ENV, URL_ENV, connect, load_settings

if TYPE_CHECKING:
    from mediaindex.client import Client

DEMO_TENANT = "demo"
# Where `mediaindex demo` keeps its own server's data when no data dir is named: apart from the
# data a user serves with `make run`, so that the demo never mixes into it.
DEMO_DATA_DIR = Path(".mediaindex-demo")


def _run_demo(client: Client) -> int:
    from mediaindex.demo import run_demo

    def wait(assets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        done = wait_settled(client, {a["id"]: a["name"] for a in assets}, timeout_s=900)
        return [done[a["id"]] for a in assets]

    def show_hits(query: str, hits: list[dict[str, Any]]) -> None:
        print(f"\n{query!r}")
        print(
            "\n".join("  " + line for line in hits_table(hits, width=terminal_width() - 2))
            if hits
            else "  no results"
        )

    return run_demo(client, progress=progress, out=print, wait=wait, show_hits=show_hits)


def _demo_server(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The running server the demo should use, (url, its data dir when this machine has it), or
    ("", data dir for the demo's own server) when none is running."""
    from mediaindex.adapters.local.data_dir_lock import running_server

    settings = load_settings(args)
    named = args.data_dir is not None or "MEDIAINDEX_DATA_DIR" in os.environ
    dirs = [settings.data_dir] if named else [settings.data_dir, DEMO_DATA_DIR]
    serving = [(info.url.rstrip("/"), d) for d in dirs if (info := running_server(d)) and info.url]
    url = (args.url or os.environ.get(URL_ENV) or "").rstrip("/")
    if url:
        return url, next((d for u, d in serving if u == url), None)
    if serving:
        return serving[0]
    return "", dirs[-1]


def cmd_demo(args: argparse.Namespace) -> int:
    url, data_dir = _demo_server(args)
    if url:
        # A server found through its lock file may still be starting; a URL given is asked once.
        wait_healthy(url, timeout_s=60 if data_dir else 0)
        print(f"using the server at {url}")
        key = args.api_key or os.environ.get(KEY_ENV)
        made = ""
        if not key:
            if data_dir is None:
                raise CliError(EXIT_AUTH, f"an API key for {url} is needed: --api-key or {KEY_ENV}")
            key = made = create_local_key(
                load_settings(args).model_copy(update={"data_dir": data_dir}), DEMO_TENANT
            )[2]
        client = connect(url, key)
        try:
            rc = _run_demo(client)
        finally:
            client.close()
        _show_playground(url, made)
        return rc
    assert data_dir is not None
    return _demo_own_server(args, data_dir)


def _show_playground(url: str, key: str) -> None:
    print(f"\nplayground: {url}/")
    if key:
        print(f"API key for tenant {DEMO_TENANT!r} (shown once): {key}", flush=True)


def _demo_own_server(args: argparse.Namespace, data_dir: Path) -> int:
    """No server is up: serve `data_dir` from this process on a free port for the demo's run."""
    from mediaindex.api.background import serve_in_background
    from mediaindex.bootstrap import build_runtime
    from mediaindex.bootstrap.app import build_app

    base = load_settings(args)
    port = args.port if args.port is not None else free_port(base.host)
    settings = base.model_copy(update={"data_dir": data_dir, "port": port})
    with local_server(settings):
        runtime = build_runtime(settings)
        try:
            _, _, key = runtime.services.keys.create_key(DEMO_TENANT)
            stop = serve_in_background(build_app(runtime, close_on_shutdown=False), settings.host, port)
            print(f"serving {data_dir} at {settings.base_url} for the demo")
            client = connect(settings.base_url, key)
            try:
                rc = _run_demo(client)
                _show_playground(settings.base_url, key)
                if rc == 0 and not args.exit:
                    print("serving; press Ctrl+C to stop", flush=True)
                    while True:
                        time.sleep(3600)
            except KeyboardInterrupt:
                rc = 0
            finally:
                client.close()
                stop()
        finally:
            runtime.close()
    return rc
