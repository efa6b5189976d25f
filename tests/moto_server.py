"""A moto server on a free loopback port, for what needs real HTTP: presigned URLs sent by httpx or a
browser, and subprocesses (the Batch entrypoint, the bundled layer) that reach AWS by endpoint URL.
A server keeps its state while it runs: tests that share one use names of their own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

_PUT_LOCK = threading.Lock()


def _atomic_conditional_puts() -> None:
    """S3 makes a conditional PUT (If-None-Match: *, If-Match) atomic: of racing writers exactly
    one passes. moto checks the condition, then writes, so on its threaded server two racing PUTs
    can both pass (seen: two 200s of 16). Its PUTs are serialised, so the fake keeps S3's promise."""
    if getattr(S3Response.put_object, "atomic", False):
        return
    unlocked = S3Response.put_object

    def put_object(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        with _PUT_LOCK:
            return unlocked(self, *args, **kwargs)

    put_object.atomic = True  # type: ignore[attr-defined]
    S3Response.put_object = put_object  # type: ignore[method-assign]


@contextmanager
def moto_server() -> Iterator[str]:
    """Runs the server for the block; yields its endpoint URL."""
    _atomic_conditional_puts()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
