"""`mediaindex`: serve the local runtime, make API keys, ingest files, check status."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from mediaindex.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in {"data_dir": getattr(args, "data_dir", None)}.items() if v is not None}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    if getattr(args, "runtime", None):
        overrides["runtime"] = args.runtime
    return Settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mediaindex.api.background import SERVER_LIMITS
    from mediaindex.bootstrap import build_runtime
    from mediaindex.bootstrap.app import build_app

    settings = _settings(args)
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


def cmd_keys_create(args: argparse.Namespace) -> int:
    from mediaindex.bootstrap import build_runtime

    settings = _settings(args).model_copy(update={"start_workers": False})
    runtime = build_runtime(settings)
    try:
        tenant, key, raw = runtime.services.keys.create_key(args.tenant)
    finally:
        runtime.close()
    print(
        f"created key {key.id} for tenant {tenant.name} ({tenant.id}); it is shown only once:",
        file=sys.stderr,
    )
    print(raw)
    return 0


def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from mediaindex.client import Client

    key = args.api_key or os.environ.get("MEDIAINDEX_API_KEY")
    if not key:
        sys.exit(
            "an API key is needed: --api-key or MEDIAINDEX_API_KEY (make one with `mediaindex keys create`)"
        )
    return Client(args.url or _settings(args).base_url, key)


def _bar(label: str):  # type: ignore[no-untyped-def]
    def show(done: int, total: int) -> None:
        frac = done / total if total else 1.0
        filled = int(frac * 30)
        sys.stderr.write(f"\r{label[:30]:30} [{'#' * filled}{'.' * (30 - filled)}] {frac * 100:5.1f}%")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def cmd_ingest(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        index = client.index_by_name(args.index)
        assets = []
        for p in args.paths:
            path = Path(p)
            if not path.is_file():
                print(f"skipped {p}: not a file", file=sys.stderr)
                continue
            assets.append(client.upload(index["id"], path, progress=_bar(path.name)))
        if args.wait:
            for a in assets:
                done = client.wait_settled(a["id"])
                print(f"{done['id']}  {done['name']:30}  {done['status']}")
        else:
            for a in assets:
                print(f"{a['id']}  {a['name']}")
    finally:
        client.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import httpx

    base = args.url or _settings(args).base_url
    try:
        health = httpx.get(f"{base}/v1/health", timeout=5).json()
    except httpx.HTTPError as e:
        print(f"no server at {base}: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"url": base, **health}))
    if args.api_key or os.environ.get("MEDIAINDEX_API_KEY"):
        client = _client(args)
        try:
            print(
                json.dumps(
                    {
                        "usage": client.request("GET", "/v1/usage"),
                        "active_tasks": len(client.request("GET", "/v1/tasks/active")["data"]),
                    }
                )
            )
        finally:
            client.close()
    return 0


def cmd_aws_init(args: argparse.Namespace) -> int:
    """Creates the table, the bucket (with CORS) and the upload queue the bucket notifies, against
    AWS_ENDPOINT_URL when set (moto server, LocalStack); a deployment gets its resources from
    `cdk deploy` instead (and learns of uploads through EventBridge, not the queue)."""
    from mediaindex.adapters.aws.clients import AwsClients, configured_endpoint
    from mediaindex.adapters.aws.provision import provision

    settings = _settings(args)
    result = provision(
        AwsClients(region=settings.aws_region),
        table=args.table or settings.table_name,
        bucket=args.bucket or settings.bucket_name,
        queue_name=args.queue or settings.upload_queue_name,
        cors_origins=settings.cors_origins,
    )
    print(json.dumps({"endpoint": configured_endpoint("dynamodb") or "aws", **result}))
    return 0


def cmd_aws_smoke(args: argparse.Namespace) -> int:
    """Checks a deployment end to end through its public API (docs/deploy.md, "Smoke test")."""
    from mediaindex.client import Client
    from mediaindex.smoke import run_smoke

    key = args.key or os.environ.get("MEDIAINDEX_API_KEY")
    if not key:
        sys.exit("an API key is needed: --key or MEDIAINDEX_API_KEY (the stack's first key: docs/deploy.md)")
    client = Client(args.api, key)
    try:
        return run_smoke(client, out=print, timeout_s=args.timeout, keep=args.keep)
    finally:
        client.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from mediaindex.api.background import serve_in_background
    from mediaindex.bootstrap import build_runtime
    from mediaindex.bootstrap.app import build_app
    from mediaindex.client import Client
    from mediaindex.demo import run_demo

    settings = _settings(args)
    runtime = build_runtime(settings)
    _, _, key = runtime.services.keys.create_key("demo")
    stop = serve_in_background(build_app(runtime, close_on_shutdown=False), settings.host, settings.port)
    client = Client(settings.base_url, key)
    try:
        rc = run_demo(client, progress=_bar, out=print)
        print(f"\nplayground: {settings.base_url}/  (API key for tenant 'demo': {key})")
        if rc == 0 and not args.exit:
            print("serving; press Ctrl+C to stop", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        rc = 0
    finally:
        client.close()
        stop()
        runtime.close()
    return rc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mediaindex", description=__doc__)
    p.add_argument("--data-dir", type=Path, default=None, help="local data folder (MEDIAINDEX_DATA_DIR)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the API and playground on the local runtime")
    s.add_argument("--host", default=None)
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--runtime", choices=["local", "aws"], default=None)
    s.add_argument("--create-key", metavar="TENANT", help="also create and print an API key for TENANT")
    s.add_argument("--log-level", default="info")
    s.set_defaults(fn=cmd_serve)

    d = sub.add_parser("demo", help="generate sample media, ingest it, search it, then serve the playground")
    d.add_argument("--host", default=None)
    d.add_argument("--port", type=int, default=None)
    d.add_argument("--exit", action="store_true", help="exit after printing the results instead of serving")
    d.set_defaults(fn=cmd_demo)

    k = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    kc = k.add_parser("create", help="create a key (printed once; only its hash is stored)")
    kc.add_argument("--tenant", required=True)
    kc.add_argument("--runtime", choices=["local", "aws"], default=None)
    kc.set_defaults(fn=cmd_keys_create)

    a = sub.add_parser("aws", help="AWS runtime helpers").add_subparsers(dest="aws_command", required=True)
    ai = a.add_parser(
        "init",
        help="create the DynamoDB table, the S3 bucket and its upload queue (AWS_ENDPOINT_URL honoured)",
    )
    ai.add_argument("--table", default=None, help="table name (MEDIAINDEX_TABLE_NAME)")
    ai.add_argument("--bucket", default=None, help="bucket name (MEDIAINDEX_BUCKET_NAME)")
    ai.add_argument("--queue", default=None, help="upload queue name (MEDIAINDEX_UPLOAD_QUEUE_NAME)")
    ai.set_defaults(fn=cmd_aws_init)
    sm = a.add_parser(
        "smoke",
        help="after a deploy: upload a generated clip through the API, wait for ready, search it",
    )
    sm.add_argument("--api", required=True, help="the API's base URL (the stack's Api URL output)")
    sm.add_argument("--key", default=None, help="an API key (or MEDIAINDEX_API_KEY)")
    sm.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the pipeline")
    sm.add_argument("--keep", action="store_true", help="keep the smoke asset and index afterwards")
    sm.set_defaults(fn=cmd_aws_smoke)

    from mediaindex import backup

    b = sub.add_parser("backup", help="archive the local data dir (consistent while the server runs)")
    b.add_argument("archive", type=Path, help="the .tar to write (outside the data dir)")
    b.set_defaults(fn=backup.cmd_backup)
    r = sub.add_parser("restore", help="unpack a backup into a fresh (missing or empty) data dir")
    r.add_argument("archive", type=Path)
    r.set_defaults(fn=backup.cmd_restore)

    for name, fn, help_ in (
        ("ingest", cmd_ingest, "upload files through the API"),
        ("status", cmd_status, "server status"),
    ):
        c = sub.add_parser(name, help=help_)
        c.add_argument("--url", default=None, help="API base URL (default: the local server)")
        c.add_argument("--api-key", default=None, help="or MEDIAINDEX_API_KEY")
        c.set_defaults(fn=fn)
        if name == "ingest":
            c.add_argument("paths", nargs="+")
            c.add_argument("--index", required=True, help="index name (created when missing)")
            c.add_argument("--wait", action="store_true", help="wait until each asset is ready or failed")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
