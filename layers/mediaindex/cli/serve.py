"""`mediaindex serve`: the API and playground, one server per data dir."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from mediaindex.cli.local_server import local_server
from mediaindex.cli.target import load_settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mediaindex.api.background import SERVER_LIMITS
    from mediaindex.bootstrap import build_runtime
    from mediaindex.bootstrap.app import build_app

    settings = load_settings(args)
    # The local runtime owns its data dir: a second server over it would corrupt what both see.
    with local_server(settings) if settings.runtime == "local" else _nothing():
        runtime = build_runtime(settings)
        if args.create_key:
            _, _, raw = runtime.services.keys.create_key(args.create_key)
            print(f"API key for tenant {args.create_key!r} (shown once): {raw}", flush=True)
        print(
            f"mediaindex ({settings.runtime}) listening on {settings.base_url}"
            f"  data: {settings.data_dir.resolve()}"
        )
        print(f"playground: {settings.base_url}/   API docs: {settings.base_url}/docs", flush=True)
        if runtime.upload_watcher is not None:
            print(f"uploads: learnt from S3 notifications on {runtime.upload_watcher.queue_url}", flush=True)
        # SIGTERM/SIGINT: in-flight requests get `shutdown_grace_s`, then are cancelled; the runtime's
        # close then aborts in-flight URL fetches and stops the workers (their jobs resume next start).
        uvicorn.run(
            build_app(runtime),
            host=settings.host,
            port=settings.port,
            log_level=args.log_level,
            timeout_graceful_shutdown=settings.shutdown_grace_s,
            **SERVER_LIMITS,  # bounded request headers (a 200 MB header otherwise sits in memory)
        )
    return 0


@contextmanager
def _nothing() -> Iterator[None]:
    yield None
