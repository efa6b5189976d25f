"""Sending `_bulk` to OpenSearch with retries, and reading the HTTP status of a client error.

Requests are cut by count and by size: OpenSearch Service refuses an HTTP request over 10 MiB (the
smaller instance types' limit) with 413, so a chunk stays under `max_bytes` (9 MiB) as serialized,
whatever its count; a 413 all the same (a smaller limit, a wrong estimate) splits the request in
two halves, down to one action, instead of failing the write.

OpenSearch (Serverless above all) answers load with 429, for the whole request or for single items
of it. The writer retries the whole request, or only the items answered 429, with bounded
exponential backoff; any other item error is not retryable and raises UnavailableError, except a
`delete` of a document already gone (404).

Refresh is a policy (`REFRESH_POLICIES`, the `refresh` parameter's own values): `false` (the
default: documents turn searchable at the index's next refresh, within a second, and no write pays
for a refresh of its own), `wait_for` (a write returns once a refresh has made it searchable) or
`true` (a write forces a refresh: tests, a local cluster; costly under load). `_delete_by_query`
knows only true/false, so `wait_for` forces one there. Serverless has no such parameter. Apart from
the index adapter so the retry rules can be read, and tested, on their own."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mediaindex.domain.errors import UnavailableError

MAX_BULK_ACTIONS = 500
MAX_BULK_BYTES = 9 * 1024 * 1024
TOO_LARGE = 413
REFRESH_POLICIES = ("false", "wait_for", "true")
_WITH_SOURCE = frozenset({"index", "create", "update"})  # actions followed by a source line


def status_of(e: Exception) -> int | None:
    """The HTTP status an opensearch-py error carries, if any."""
    code = getattr(e, "status_code", None)
    return code if isinstance(code, int) else None


def error_type(e: Exception) -> str | None:
    """The error type an opensearch-py error carries (`resource_already_exists_exception`), if any."""
    error = getattr(e, "error", None)
    return error if isinstance(error, str) else None


def write_refresh(policy: str, *, serverless: bool) -> str | None:
    """The `refresh` parameter of a `_bulk` under `policy`, or None to leave it out."""
    if policy not in REFRESH_POLICIES:
        raise ValueError(f"refresh must be one of {', '.join(REFRESH_POLICIES)}, not {policy!r}")
    return None if serverless or policy == "false" else policy


def delete_by_query_refresh(policy: str) -> bool:
    """Whether a `_delete_by_query` under `policy` refreshes: it has no wait_for, so only `false`
    leaves the deleted documents to the index's next refresh."""
    return policy != "false"


def action_groups(lines: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The NDJSON lines grouped per action: the action line, then its source line if it has one."""
    groups: list[list[dict[str, Any]]] = []
    i = 0
    while i < len(lines):
        step = 2 if next(iter(lines[i])) in _WITH_SOURCE else 1
        groups.append(lines[i : i + step])
        i += step
    return groups


def serialized_size(group: list[dict[str, Any]]) -> int:
    """Bytes of these lines in the request body, serialized as opensearch-py does (compact JSON,
    UTF-8, one newline each)."""
    return sum(
        len(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()) + 1 for line in group
    )


def chunks(
    lines: list[dict[str, Any]], *, max_actions: int, max_bytes: int
) -> Iterator[list[dict[str, Any]]]:
    """The lines cut into requests of at most `max_actions` actions and `max_bytes` bytes (an action
    bigger than that on its own travels alone)."""
    chunk: list[dict[str, Any]] = []
    count = size = 0
    for group in action_groups(lines):
        group_size = serialized_size(group)
        if chunk and (count == max_actions or size + group_size > max_bytes):
            yield chunk
            chunk, count, size = [], 0, 0
        chunk.extend(group)
        count += 1
        size += group_size
    if chunk:
        yield chunk


@dataclass(frozen=True)
class BulkWriter:
    client: Any
    refresh: str | None  # the `refresh` parameter of every request (write_refresh), or None
    max_retries: int
    backoff_s: float
    max_backoff_s: float
    sleep: Callable[[float], None]
    max_actions: int = MAX_BULK_ACTIONS
    max_bytes: int = MAX_BULK_BYTES

    def send(self, lines: list[dict[str, Any]]) -> None:
        """Sends the lines as `_bulk` requests within the count and size limits."""
        for chunk in chunks(lines, max_actions=self.max_actions, max_bytes=self.max_bytes):
            self._send(chunk)

    def _send(self, lines: list[dict[str, Any]]) -> None:
        """Sends one `_bulk`, retrying the whole request or only the items answered 429 with bounded
        exponential backoff, and halving it on 413; other item errors are not retryable and raise."""
        pending = lines
        for attempt in range(self.max_retries + 1):
            kwargs: dict[str, Any] = {"body": pending}
            if self.refresh is not None:
                kwargs["refresh"] = self.refresh
            try:
                resp = self.client.bulk(**kwargs)
            except Exception as e:
                status = status_of(e)
                if status == TOO_LARGE:
                    self._split(pending, e)
                    return
                if status != 429 or attempt == self.max_retries:
                    raise UnavailableError(f"search index write failed: {e}") from e
                self.sleep(min(self.max_backoff_s, self.backoff_s * 2**attempt))
                continue
            if not resp.get("errors"):
                return
            retry: list[dict[str, Any]] = []
            for item, group in zip(resp["items"], action_groups(pending), strict=True):
                op, result = next(iter(item.items()))
                status = int(result.get("status", 500))
                if status == 429:
                    retry.extend(group)
                elif status >= 300 and not (op == "delete" and status == 404):
                    raise UnavailableError(
                        f"search index rejected {op} of {group[0][op].get('_id')}: {result}"
                    )
            if not retry:
                return
            if attempt == self.max_retries:
                break
            pending = retry
            self.sleep(min(self.max_backoff_s, self.backoff_s * 2**attempt))
        raise UnavailableError("search index kept answering 429 (too many requests)")

    def _split(self, lines: list[dict[str, Any]], error: Exception) -> None:
        """413: the request is too large for the cluster; send each half on its own."""
        groups = action_groups(lines)
        if len(groups) == 1:
            raise UnavailableError(f"search index refused a document as too large: {error}") from error
        half = len(groups) // 2
        for part in (groups[:half], groups[half:]):
            self._send([line for group in part for line in group])
