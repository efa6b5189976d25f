"""Serving an app from a background thread (the demo, the benches): uvicorn on host:port until
the returned `stop` is called."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def serve_in_background(app: Any, host: str, port: int, *, access_log: bool = True) -> Callable[[], None]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=access_log)
    )
    thread = threading.Thread(target=server.run, name="mi-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError(f"the server did not start on {host}:{port}")

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return stop
