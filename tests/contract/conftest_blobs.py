"""Helpers for the blob store tests: the local blob router served by uvicorn in a thread, and an
S3 client for a ThreadedMotoServer. Plain functions (imported by the tests), not fixtures, so no
conftest is touched."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import uvicorn
from botocore.config import Config
from fastapi import FastAPI

from mediaindex.adapters.local.blob_routes import build_local_blob_router
from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.api import errors
from mediaindex.ports.blobs import BlobInfo

SECRET = b"contract-test-secret-0123456789"


def bound_socket() -> tuple[socket.socket, str]:
    """A listening socket on a free port, bound now so the base URL is known before the app exists."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def blob_app(store: LocalBlobStore, on_created: Callable[[str, BlobInfo], None]) -> FastAPI:
    """The router alone, with the error rendering the real app does in its one handler."""
    app = FastAPI()
    app.include_router(build_local_blob_router(store, on_created))
    errors.install(app)
    return app


@contextmanager
def serve_in_thread(app: Any, sock: socket.socket) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def local_blob_server(
    root: Path, on_created: Callable[[str, BlobInfo], None], **store_kwargs: Any
) -> Iterator[LocalBlobStore]:
    sock, base_url = bound_socket()
    store = LocalBlobStore(root, base_url, SECRET, **store_kwargs)
    with serve_in_thread(blob_app(store, on_created), sock):
        yield store


def moto_s3_client(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
