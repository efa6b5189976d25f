"""Sending `_bulk` to OpenSearch with retries, and reading the HTTP status of a client error.

OpenSearch (Serverless above all) answers load with 429, for the whole request or for single items
of it. The writer retries the whole request, or only the items answered 429, with bounded
exponential backoff; any other item error is not retryable and raises UnavailableError, except a
`delete` of a document already gone (404). `refresh` waits for the writes to be searchable (tests,
a local cluster); Serverless has no such parameter. Apart from the index adapter so the retry rules
can be read, and tested, on their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mediaindex.domain.errors import UnavailableError


def status_of(e: Exception) -> int | None:
    """The HTTP status an opensearch-py error carries, if any."""
    code = getattr(e, "status_code", None)
    return code if isinstance(code, int) else None


@dataclass(frozen=True)
class BulkWriter:
    client: Any
    refresh: bool
    max_retries: int
    backoff_s: float
    max_backoff_s: float
    sleep: Callable[[float], None]

    def send(self, lines: list[dict[str, Any]]) -> None:
        """Sends `_bulk`, retrying the whole request or only the items answered 429 with bounded
        exponential backoff; other item errors are not retryable and raise."""
        pending = lines
        for attempt in range(self.max_retries + 1):
            kwargs: dict[str, Any] = {"body": pending}
            if self.refresh:
                kwargs["refresh"] = "true"
            try:
                resp = self.client.bulk(**kwargs)
            except Exception as e:
                if status_of(e) != 429 or attempt == self.max_retries:
                    raise UnavailableError(f"search index write failed: {e}") from e
                self.sleep(min(self.max_backoff_s, self.backoff_s * 2**attempt))
                continue
            if not resp.get("errors"):
                return
            retry: list[dict[str, Any]] = []
            i = 0
            for item in resp["items"]:
                op, result = next(iter(item.items()))
                action = pending[i]
                step = 1 if op == "delete" else 2
                status = int(result.get("status", 500))
                if status == 429:
                    retry.extend(pending[i : i + step])
                elif status >= 300 and not (op == "delete" and status == 404):
                    raise UnavailableError(f"search index rejected {op} of {action[op].get('_id')}: {result}")
                i += step
            if not retry:
                return
            if attempt == self.max_retries:
                break
            pending = retry
            self.sleep(min(self.max_backoff_s, self.backoff_s * 2**attempt))
        raise UnavailableError("search index kept answering 429 (too many requests)")
