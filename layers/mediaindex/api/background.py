"""Serving an app from a background thread (the demo, the benches): uvicorn on host:port until
the returned `stop` is called."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# What a client can make the server hold before the app sees its request. uvicorn's default
# parser (httptools) buffers request headers without a limit: two clients sending 200 MB of one
# header took a server from 76 to 455 MiB and minutes of CPU, before any key was asked for. h11
# refuses a request line plus headers over this size at once. Pass these to every uvicorn.Config
# or uvicorn.run that serves the app (`mediaindex serve` among them).
SERVER_LIMITS: dict[str, Any] = {"http": "h11", "h11_max_incomplete_event_size": 64 * 1024}


def serve_in_background(app: Any, host: str, port: int, *, access_log: bool = True) -> Callable[[], None]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=access_log, **SERVER_LIMITS)
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
