"""Which server a command talks to, and with which key: flags, then the environment, then the
data dir's lock file (the URL its server wrote there), then the configured host and port."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mediaindex.cli.errors import EXIT_AUTH, EXIT_USAGE, CliError
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.client import Client

URL_ENV = "MEDIAINDEX_URL"
KEY_ENV = "MEDIAINDEX_API_KEY"
TIMEOUT_ENV = "MEDIAINDEX_CLIENT_TIMEOUT_S"  # seconds each request may take (default 60)


def add_connection(p: argparse.ArgumentParser) -> None:
    """The options of every command that talks to a server."""
    p.add_argument(
        "--url",
        default=None,
        help=f"the API's base URL (or {URL_ENV}; default: the server serving the data dir, else http://127.0.0.1:8000)",
    )
    p.add_argument("--api-key", default=None, help=f"an API key (or {KEY_ENV})")


def load_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "host", "port", "runtime"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def base_url(args: argparse.Namespace) -> str:
    """--url, else MEDIAINDEX_URL, else the URL the server holding the data dir wrote into its
    lock file, else the configured host and port."""
    from mediaindex.adapters.local.data_dir_lock import running_server

    url = args.url or os.environ.get(URL_ENV)
    if not url:
        settings = load_settings(args)
        running = running_server(settings.data_dir)
        url = running.url if running and running.url else settings.base_url
    return str(url).rstrip("/")


def api_key(args: argparse.Namespace) -> str:
    key = args.api_key or os.environ.get(KEY_ENV)
    if not key:
        raise CliError(
            EXIT_AUTH,
            f"an API key is needed: --api-key or {KEY_ENV}"
            " (make one with `mediaindex keys create --tenant NAME`)",
        )
    return str(key)


@contextmanager
def client_for(args: argparse.Namespace) -> Iterator[Client]:
    client = connect(base_url(args), api_key(args))
    try:
        yield client
    finally:
        client.close()


def connect(url: str, key: str) -> Client:
    from mediaindex.client import Client

    try:
        timeout_s = float(os.environ.get(TIMEOUT_ENV) or 60)
    except ValueError:
        raise CliError(EXIT_USAGE, f"{TIMEOUT_ENV} must be a number of seconds") from None
    return Client(url, key, timeout_s=timeout_s)
