"""`mediaindex`: serve the local runtime, make API keys, ingest and search media, run the demo.

Exit codes: 0 success, 1 failure (a file that did not ingest, an error answer from the server),
2 usage, 3 authentication (a missing or refused API key), 4 connection (no server answering, a
timeout), 5 in use (the data dir or the port is another server's), 130 interrupted (docs/cli.md)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.client import Client

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_CONNECTION = 4
EXIT_IN_USE = 5
EXIT_INTERRUPTED = 130

URL_ENV = "MEDIAINDEX_URL"
KEY_ENV = "MEDIAINDEX_API_KEY"
TIMEOUT_ENV = "MEDIAINDEX_CLIENT_TIMEOUT_S"  # seconds each request may take (default 60)
DEMO_TENANT = "demo"
# Where `mediaindex demo` keeps its own server's data when no data dir is named: apart from the
# data a user serves with `make run`, so that the demo never mixes into it.
DEMO_DATA_DIR = Path(".mediaindex-demo")
SETTLED = ("ready", "failed")


class CliError(Exception):
    """An expected failure: printed as one `error: ...` line, exiting with `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- settings, server, key


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "host", "port", "runtime"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _base_url(args: argparse.Namespace) -> str:
    """--url, else MEDIAINDEX_URL, else the URL the server holding the data dir wrote into its
    lock file, else the configured host and port."""
    from mediaindex.adapters.local.data_dir_lock import running_server

    url = args.url or os.environ.get(URL_ENV)
    if not url:
        settings = _settings(args)
        running = running_server(settings.data_dir)
        url = running.url if running and running.url else settings.base_url
    return str(url).rstrip("/")


def _api_key(args: argparse.Namespace) -> str:
    key = args.api_key or os.environ.get(KEY_ENV)
    if not key:
        raise CliError(
            EXIT_AUTH,
            f"an API key is needed: --api-key or {KEY_ENV}"
            " (make one with `mediaindex keys create --tenant NAME`)",
        )
    return str(key)


@contextmanager
def _client(args: argparse.Namespace) -> Iterator[Client]:
    client = _connect(_base_url(args), _api_key(args))
    try:
        yield client
    finally:
        client.close()


def _connect(url: str, key: str) -> Client:
    from mediaindex.client import Client

    try:
        timeout_s = float(os.environ.get(TIMEOUT_ENV) or 60)
    except ValueError:
        raise CliError(EXIT_USAGE, f"{TIMEOUT_ENV} must be a number of seconds") from None
    return Client(url, key, timeout_s=timeout_s)


def _create_local_key(settings: Settings, tenant_name: str) -> tuple[str, str, str]:
    """A key made straight in the local data dir (safe beside its running server: SQLite WAL).
    Returns (tenant description, key id, raw key)."""
    from mediaindex.bootstrap import build_runtime

    runtime = build_runtime(settings.model_copy(update={"start_workers": False}))
    try:
        tenant, key, raw = runtime.services.keys.create_key(tenant_name)
    finally:
        runtime.close()
    return f"{tenant.name} ({tenant.id})", key.id, raw


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, *, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise CliError(EXIT_CONNECTION, f"the server at {url} did not answer /v1/health")
        time.sleep(0.3)


@contextmanager
def _local_server(settings: Settings) -> Iterator[Any]:
    """Holds the data dir's lock while the block runs; raises DataDirInUse (exit 5) when another
    server holds it, and CliError when the port is taken."""
    from mediaindex.adapters.local.data_dir_lock import DataDirLock

    with DataDirLock(settings.data_dir) as lock:
        lock.acquire(settings.base_url)
        if not _port_free(settings.host, settings.port):
            raise CliError(
                EXIT_IN_USE,
                f"port {settings.port} on {settings.host} is already in use; pick another with --port",
            )
        yield lock


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mediaindex.api.background import SERVER_LIMITS
    from mediaindex.bootstrap import build_runtime
    from mediaindex.bootstrap.app import build_app

    settings = _settings(args)
    # The local runtime owns its data dir: a second server over it would corrupt what both see.
    with _local_server(settings) if settings.runtime == "local" else _nothing():
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


def cmd_keys_create(args: argparse.Namespace) -> int:
    tenant, key_id, raw = _create_local_key(_settings(args), args.tenant)
    _err(f"created key {key_id} for tenant {tenant}; it is shown only once:")
    print(raw)
    return 0


# ---------------------------------------------------------------- output helpers


def _progress(label: str) -> Callable[[int, int], None]:
    """An upload's progress: a live bar on a terminal, one line when done elsewhere."""
    tty = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        if tty:
            frac = done / total if total else 1.0
            filled = int(frac * 30)
            sys.stderr.write(f"\r{label[:30]:30} [{'#' * filled}{'.' * (30 - filled)}] {frac * 100:5.1f}%")
            if done >= total:
                sys.stderr.write("\n")
        elif done >= total:
            sys.stderr.write(f"uploaded {label} ({_size(total)})\n")
        sys.stderr.flush()

    return show


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def _clip(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(0, width - 3)] + "..." if width > 3 else text[:width]


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def hits_table(hits: list[dict[str, Any]], *, width: int) -> list[str]:
    """Search hits as aligned lines: asset name, time range, score, text cut to `width`."""
    names = [h.get("asset_name") or h["asset_id"] for h in hits]
    times = [f"{_clock(h['start'])}-{_clock(h['end'])}" for h in hits]
    name_w = min(max([5, *map(len, names)]), 32)
    time_w = max([4, *map(len, times)])
    lines = [f"{'asset':{name_w}}  {'time':{time_w}}  {'score':>5}  text"]
    for name, span, h in zip(names, times, hits, strict=True):
        head = f"{_clip(name, name_w):{name_w}}  {span:{time_w}}  {h['score']:5.3f}  "
        text = " ".join((h.get("text") or "").split())
        lines.append(head + _clip(text, width - len(head)))
    return lines


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
                _err(line)
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
            sys.stderr.write(f"\r\x1b[K{_clip(status, _width() - 1)}")
            sys.stderr.flush()
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return last


# ---------------------------------------------------------------- ingest, search, status


def _media_files(paths: list[str], include: list[str]) -> tuple[list[Path], list[str]]:
    """The files to upload (named files as they are, folders recursed through `include`) and one
    problem line for each path that gave nothing."""
    files: list[Path] = []
    problems: list[str] = []
    patterns = [p.lower() for p in include]
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and any(fnmatch.fnmatch(p.name.lower(), pat) for pat in patterns)
            )
            if not found:
                problems.append(f"{raw}: no files in this folder match --include")
            files += found
        elif path.is_file():
            files.append(path)
        elif path.exists():
            problems.append(f"{raw}: not a regular file")
        else:
            problems.append(f"{raw}: no such file or folder")
    return files, problems


def _readable(path: Path) -> str | None:
    """Why `path` cannot be uploaded, checked before the server is asked for anything."""
    try:
        with path.open("rb") as f:
            if not f.read(1):
                return "the file is empty"
    except OSError as e:
        return f"cannot read it: {e.strerror or e}"
    return None


def _media_globs() -> list[str]:
    from mediaindex.domain.rules import AUDIO_EXT, IMAGE_EXT, VIDEO_EXT

    return [f"*.{e}" for e in sorted(VIDEO_EXT | AUDIO_EXT | IMAGE_EXT)]


def cmd_ingest(args: argparse.Namespace) -> int:
    from mediaindex.client import ApiError

    files, problems = _media_files(args.paths, args.include or _media_globs())
    for problem in problems:
        _err(f"error: {problem}")
    failed = len(problems)
    uploaded: dict[str, Path] = {}
    with _client(args) as client:
        index = client.index_by_name(args.index)
        for path in files:
            reason = _readable(path)
            if reason is None:
                try:
                    asset = client.upload(index["id"], path, progress=_progress(path.name))
                    uploaded[asset["id"]] = path
                    if not args.wait:
                        print(f"{asset['id']}  {path}")
                    continue
                except ApiError as e:
                    if e.status == 401:
                        raise
                    reason = f"{e.code or f'HTTP {e.status}'}: {e.message}"
                except OSError as e:
                    reason = f"cannot read it: {e.strerror or e}"
            _err(f"error: {path}: {reason}")
            failed += 1
        if args.wait and uploaded:
            labels = {asset_id: str(path) for asset_id, path in uploaded.items()}
            done = wait_settled(client, labels, timeout_s=args.timeout)
            for asset_id, path in uploaded.items():
                asset = done[asset_id]
                status = asset["status"]
                reason = failure_reason(asset)
                if status not in SETTLED:
                    reason = f"still {status} after {args.timeout:g} s"
                failed += status != "ready"
                print(f"{asset_id}  {path}  {status}" + (f"  {reason}" if reason else ""))
    if failed:
        _err(f"{failed} of {len(files) + len(problems)} failed to ingest")
        return EXIT_FAILED
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with _client(args) as client:
        index = client.find_index(args.index)
        hits = client.search(index["id"], args.query, limit=args.limit)
    if args.json:
        print(json.dumps({"index": {"id": index["id"], "name": index["name"]}, "data": hits}, indent=2))
    elif not hits:
        _err(f"no results for {args.query!r} in index {index['name']!r}")
    else:
        print("\n".join(hits_table(hits, width=_width())))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import httpx

    base = _base_url(args)
    try:
        health = httpx.get(f"{base}/v1/health", timeout=5).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as e:
        raise CliError(EXIT_CONNECTION, f"no mediaindex server at {base}: {e}") from e
    print(json.dumps({"url": base, **health}))
    if args.api_key or os.environ.get(KEY_ENV):
        with _client(args) as client:
            usage = client.request("GET", "/v1/usage")
            active = client.request("GET", "/v1/tasks/active")["data"]
        print(json.dumps({"usage": usage, "active_tasks": len(active)}))
    return 0


# ---------------------------------------------------------------- aws


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
    from mediaindex.smoke import run_smoke

    key = args.key or os.environ.get(KEY_ENV)
    if not key:
        raise CliError(
            EXIT_AUTH, f"an API key is needed: --key or {KEY_ENV} (the stack's first key: docs/deploy.md)"
        )
    client = _connect(args.api, key)
    try:
        return run_smoke(client, out=print, timeout_s=args.timeout, keep=args.keep)
    finally:
        client.close()


# ---------------------------------------------------------------- demo


def _run_demo(client: Client) -> int:
    from mediaindex.demo import run_demo

    def wait(assets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        done = wait_settled(client, {a["id"]: a["name"] for a in assets}, timeout_s=900)
        return [done[a["id"]] for a in assets]

    def show_hits(query: str, hits: list[dict[str, Any]]) -> None:
        print(f"\n{query!r}")
        print(
            "\n".join("  " + line for line in hits_table(hits, width=_width() - 2))
            if hits
            else "  no results"
        )

    return run_demo(client, progress=_progress, out=print, wait=wait, show_hits=show_hits)


def _demo_server(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The running server the demo should use, (url, its data dir when this machine has it), or
    ("", data dir for the demo's own server) when none is running."""
    from mediaindex.adapters.local.data_dir_lock import running_server

    settings = _settings(args)
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
        _wait_healthy(url, timeout_s=60 if data_dir else 0)
        print(f"using the server at {url}")
        key = args.api_key or os.environ.get(KEY_ENV)
        made = ""
        if not key:
            if data_dir is None:
                raise CliError(EXIT_AUTH, f"an API key for {url} is needed: --api-key or {KEY_ENV}")
            key = made = _create_local_key(
                _settings(args).model_copy(update={"data_dir": data_dir}), DEMO_TENANT
            )[2]
        client = _connect(url, key)
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

    base = _settings(args)
    port = args.port if args.port is not None else _free_port(base.host)
    settings = base.model_copy(update={"data_dir": data_dir, "port": port})
    with _local_server(settings):
        runtime = build_runtime(settings)
        try:
            _, _, key = runtime.services.keys.create_key(DEMO_TENANT)
            stop = serve_in_background(build_app(runtime, close_on_shutdown=False), settings.host, port)
            print(f"serving {data_dir} at {settings.base_url} for the demo")
            client = _connect(settings.base_url, key)
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


# ---------------------------------------------------------------- parser, main


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mediaindex")
    except PackageNotFoundError:
        from mediaindex import __version__

        return __version__


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("between 1 and 100")
    return value


def _add_connection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=None,
        help=f"the API's base URL (or {URL_ENV}; default: the server serving the data dir, else http://127.0.0.1:8000)",
    )
    p.add_argument("--api-key", default=None, help=f"an API key (or {KEY_ENV})")


def _add_listen(p: argparse.ArgumentParser, port_help: str) -> None:
    p.add_argument("--host", default=None, help="address to listen on (MEDIAINDEX_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help=port_help)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mediaindex",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="local data folder (MEDIAINDEX_DATA_DIR; default ./.mediaindex)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="serve the API and playground (one server per data dir)")
    _add_listen(s, "port to listen on (MEDIAINDEX_PORT; default 8000)")
    s.add_argument("--runtime", choices=["local", "aws"], default=None, help="runtime (MEDIAINDEX_RUNTIME)")
    s.add_argument("--create-key", metavar="TENANT", help="also create and print an API key for TENANT")
    s.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    s.set_defaults(fn=cmd_serve)

    d = sub.add_parser(
        "demo",
        help="ingest generated sample media and search it (on the running server, else on one of its own)",
    )
    _add_listen(d, "port of the demo's own server (default: a free one)")
    _add_connection(d)
    d.add_argument("--exit", action="store_true", help="exit after the results instead of serving")
    d.set_defaults(fn=cmd_demo)

    i = sub.add_parser("ingest", help="upload files and folders into an index")
    _add_connection(i)
    i.add_argument("paths", nargs="+", metavar="PATH", help="files, and folders to search recursively")
    i.add_argument("--index", required=True, help="index name (created when missing)")
    i.add_argument(
        "--include",
        action="append",
        metavar="GLOB",
        help="file names to take from folders, repeatable (default: the media extensions the server knows)",
    )
    i.add_argument(
        "--wait", action="store_true", help="wait until each asset is ready or failed, showing progress"
    )
    i.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds --wait waits at most (default 1800)"
    )
    i.set_defaults(fn=cmd_ingest)

    q = sub.add_parser("search", help="search an index by text")
    _add_connection(q)
    q.add_argument("query", help="the text to search for")
    q.add_argument("--index", required=True, help="index name or id")
    q.add_argument("--limit", type=_limit, default=10, help="how many hits (1..100, default 10)")
    q.add_argument("--json", action="store_true", help="print the hits as JSON, with asset names")
    q.set_defaults(fn=cmd_search)

    st = sub.add_parser("status", help="the server's health, and usage with an API key")
    _add_connection(st)
    st.set_defaults(fn=cmd_status)

    k = sub.add_parser("keys", help="API keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    kc = k.add_parser(
        "create", help="create a key in the local data dir (printed once; only its hash is stored)"
    )
    kc.add_argument(
        "--tenant", required=True, help="the tenant (account) the key belongs to; created when new"
    )
    kc.add_argument("--runtime", choices=["local", "aws"], default=None, help="runtime (MEDIAINDEX_RUNTIME)")
    kc.set_defaults(fn=cmd_keys_create)

    a = sub.add_parser("aws", help="AWS runtime helpers").add_subparsers(
        dest="aws_command", required=True, metavar="ACTION"
    )
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
    sm.add_argument("--key", default=None, help=f"an API key (or {KEY_ENV})")
    sm.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the pipeline")
    sm.add_argument("--keep", action="store_true", help="keep the smoke asset and index afterwards")
    sm.set_defaults(fn=cmd_aws_smoke)

    from mediaindex import backup

    b = sub.add_parser("backup", help="archive the local data dir (consistent while the server runs)")
    b.add_argument("archive", type=Path, help="the .tar to write (outside the data dir)")
    b.set_defaults(fn=backup.cmd_backup)
    r = sub.add_parser("restore", help="unpack a backup into a fresh (missing or empty) data dir")
    r.add_argument("archive", type=Path, help="the .tar a backup wrote")
    r.set_defaults(fn=backup.cmd_restore)
    _describe(p)
    return p


def _describe(parser: argparse.ArgumentParser) -> None:
    """Gives each command's --help its one-line summary as a description."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                sub.description = sub.description or summaries.get(name)
                _describe(sub)


def _run(args: argparse.Namespace) -> int:
    """Runs the command; an expected failure becomes (exit code, one line) instead of a traceback."""
    import httpx
    from pydantic import ValidationError

    from mediaindex.adapters.local.data_dir_lock import DataDirInUse
    from mediaindex.client import ApiError

    try:
        return int(args.fn(args))
    except CliError as e:
        code, message = e.code, str(e)
    except ValidationError as e:  # a MEDIAINDEX_* variable the settings refuse
        first = e.errors()[0]
        name = "MEDIAINDEX_" + "_".join(str(part) for part in first["loc"]).upper()
        code, message = EXIT_USAGE, f"invalid setting {name}: {first['msg']}"
    except DataDirInUse as e:
        code, message = EXIT_IN_USE, f"{e}; stop it first, or use another --data-dir"
    except ApiError as e:
        code = EXIT_AUTH if e.status == 401 else EXIT_FAILED
        said = _clip(" ".join(e.message.split()), 200)  # a proxy's error page is no one-liner
        message = f"{e.code or 'http_error'}: {said} (HTTP {e.status})"
        if e.status == 401:
            message += f"; check --api-key or {KEY_ENV}"
    except httpx.TimeoutException as e:
        code, message = EXIT_CONNECTION, f"timed out talking to {_url_of(e)}"
    except httpx.TransportError as e:
        code = EXIT_CONNECTION
        message = f"cannot reach the server at {_url_of(e)} ({e}); is it running? (`mediaindex serve`)"
    _err(f"error: {message}")
    return code


def _url_of(e: Exception) -> str:
    try:
        url = e.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return "the server"
    return f"{url.scheme}://{url.netloc.decode()}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()  # here, where a closed pipe is handled, not at interpreter exit
        return code
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit flush from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
