"""Runs a zip-packaged Lambda handler the way the Python runtime does, inside an artifact's interpreter.

Started by tests/artifacts with PYTHONPATH holding only the function's folder (Lambda's /var/task)
and the layer's python/ (Lambda's /opt/python), and the function's environment. It imports the
handler module (an import error fails like Lambda's Runtime.ImportModuleError: exit 1 with the
traceback), then calls the handler on each event in turn, as warm invocations of one sandbox.

stdin: {"handler": "handler.handler", "function": "name", "events": [...], "out": "path"}
`out` receives one JSON line per event: {"result": ...} or {"error", "message", "trace"}. The handlers'
own logs (Powertools writes JSON lines to stdout) stay on stdout.

Imports only the standard library: nothing of the tests is on this interpreter's path."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
import uuid
from typing import Any


class Context:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(self, function: str, timeout_s: float = 30.0) -> None:
        self.function_name = function
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function}"
        self.log_stream_name = "2026/01/01/[$LATEST]" + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    request = json.load(sys.stdin)
    module_name, _, attr = request["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), attr)
    with open(request["out"], "w") as out:
        for event in request["events"]:
            try:
                row: dict[str, Any] = {"result": handler(event, Context(request["function"]))}
            except Exception as e:
                row = {"error": type(e).__name__, "message": str(e), "trace": traceback.format_exc()}
            out.write(json.dumps(row, default=str) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
