"""A moto server on a free loopback port, for what needs real HTTP: presigned URLs sent by httpx or a
browser, and subprocesses (the Batch entrypoint, the bundled layer) that reach AWS by endpoint URL.
A server keeps its state while it runs: tests that share one use names of their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer


@contextmanager
def moto_server() -> Iterator[str]:
    """Runs the server for the block; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
