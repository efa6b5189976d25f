"""`mediaindex`: serve the local runtime, manage API keys, webhooks and quotas, ingest and search
media, export models, run the demo.

Exit codes: 0 success, 1 failure (a file that did not ingest, an error answer from the server),
2 usage, 3 authentication (a missing or refused API key, or one whose scope does not allow the
call), 4 connection (no server answering, a
timeout), 5 in use (the data dir or the port is another server's), 130 interrupted (docs/cli.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mediaindex.cli import keys, models, quotas, reindex, transfer, webhooks
from mediaindex.cli.aws import cmd_aws_init, cmd_aws_smoke
from mediaindex.cli.demo_cmd import cmd_demo
from mediaindex.cli.errors import (
    EXIT_AUTH,
    EXIT_CONNECTION,
    EXIT_FAILED,
    EXIT_IN_USE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    err,
)
from mediaindex.cli.ingest import cmd_ingest
from mediaindex.cli.output import clip, page_limit
from mediaindex.cli.search import cmd_search
from mediaindex.cli.serve import cmd_serve
from mediaindex.cli.status import cmd_status
from mediaindex.cli.target import KEY_ENV, add_connection


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mediaindex")
    except PackageNotFoundError:
        from mediaindex import __version__

        return __version__


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
    add_connection(d)
    d.add_argument("--exit", action="store_true", help="exit after the results instead of serving")
    d.set_defaults(fn=cmd_demo)

    i = sub.add_parser("ingest", help="upload files and folders into an index")
    add_connection(i)
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
    add_connection(q)
    q.add_argument("query", help="the text to search for")
    q.add_argument("--index", required=True, help="index name or id")
    q.add_argument("--limit", type=page_limit, default=10, help="how many hits (1..100, default 10)")
    q.add_argument("--json", action="store_true", help="print the hits as JSON, with asset names")
    q.set_defaults(fn=cmd_search)

    st = sub.add_parser("status", help="the server's health, and usage with an API key")
    add_connection(st)
    st.set_defaults(fn=cmd_status)

    keys.register(sub)
    webhooks.register(sub)
    quotas.register(sub)
    models.register(sub)
    reindex.register(sub)
    transfer.register(sub)

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
        # A key refused (401) or too narrow for the call (403 scope_insufficient) is the key's
        # problem, not the request's: both are exit 3, and both point at the key.
        refused = e.status == 401 or (e.status == 403 and e.code == "scope_insufficient")
        code = EXIT_AUTH if refused else EXIT_FAILED
        said = clip(" ".join(e.message.split()), 200)  # a proxy's error page is no one-liner
        message = f"{e.code or 'http_error'}: {said} (HTTP {e.status})"
        if e.status == 401:
            message += f"; check --api-key or {KEY_ENV}"
        elif refused:
            message += f"; use a key with a wider scope (--api-key or {KEY_ENV})"
    except httpx.TimeoutException as e:
        code, message = EXIT_CONNECTION, f"timed out talking to {_url_of(e)}"
    except httpx.TransportError as e:
        code = EXIT_CONNECTION
        message = f"cannot reach the server at {_url_of(e)} ({e}); is it running? (`mediaindex serve`)"
    err(f"error: {message}")
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
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit flush from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
