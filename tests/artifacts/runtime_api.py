"""A Lambda Runtime API on 127.0.0.1 for a container-image function's runtime client (awslambdaric).

It serves the queued events one per `GET .../invocation/next` and records what the client posts
back (`.../response`, `.../error`, `/init/error`), so an image's ENTRYPOINT and CMD run exactly as
Lambda starts them: `AWS_LAMBDA_RUNTIME_API=host:port python -m awslambdaric <handler>`. Once the
queue is empty a `next` waits (as Lambda freezes an idle sandbox) until the server stops."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:mediaindex-encoder"


class RuntimeApi:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.ids = [str(uuid.uuid4()) for _ in events]
        self._pending: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        for request_id, event in zip(self.ids, events, strict=True):
            self._pending.put((request_id, event))
        self.answers: dict[str, tuple[str, Any]] = {}  # request id -> ("response" | "error", body)
        self.init_error: Any = None
        self.finished = threading.Event()  # every event answered, or the init failed
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> RuntimeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def results(self) -> list[tuple[str, Any]]:
        return [self.answers[i] for i in self.ids if i in self.answers]

    def _answered(self, request_id: str, kind: str, body: Any) -> None:
        self.answers[request_id] = (kind, body)
        if len(self.answers) == len(self.ids):
            self.finished.set()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> Any:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return raw.decode(errors="replace")

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404)
                    return
                while not api._stopping.is_set():
                    try:
                        request_id, event = api._pending.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    deadline = int((time.time() + 60) * 1000)
                    self._reply(
                        200,
                        json.dumps(event).encode(),
                        {
                            "Lambda-Runtime-Aws-Request-Id": request_id,
                            "Lambda-Runtime-Deadline-Ms": str(deadline),
                            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                            "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
                        },
                    )
                    return

            def do_POST(self) -> None:
                body = self._body()
                if self.path == f"{PREFIX}/init/error":
                    api.init_error = body
                    api.finished.set()
                    self._reply(202, b'{"status":"OK"}')
                    return
                parts = self.path.removeprefix(f"{PREFIX}/invocation/").split("/")
                if len(parts) == 2 and parts[1] in ("response", "error"):
                    api._answered(parts[0], parts[1], body)
                    self._reply(202, b'{"status":"OK"}')
                    return
                self._reply(404)

        return Handler
