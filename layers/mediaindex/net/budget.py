"""The budget of one download (`FetchBudget`), shared by every connection and read it makes: an
overall deadline across all its hops and reads, and a minimum average rate after a grace period, so
a source that trickles bytes cannot hold a worker or a request thread for long. Every budget in
force is registered, so `abort_in_flight()` (at shutdown) ends every download in flight within a
fraction of a second (`FetchAborted`: not the source's fault); `FetchTooSlow` is a budget run out."""

from __future__ import annotations

import threading
import time

# A blocked read or connect wakes this often to look at the budget (deadline, rate, abort).
SLICE_S = 0.25


class FetchAborted(Exception):
    """The process is shutting down and gave up the download in flight: the source is not at
    fault, so callers must not record a failure (a job stays to be resumed)."""


class FetchTooSlow(Exception):
    """The download ran past its deadline or under its minimum average rate."""


_in_flight: set[FetchBudget] = set()
_in_flight_lock = threading.Lock()
_aborts = 0  # how many times abort_in_flight ran: a waiter that sees it change gives up


def abort_in_flight() -> None:
    """Ends every download in flight now (they raise FetchAborted within about SLICE_S): called
    at shutdown, so threads stuck on slow sources let the process exit."""
    global _aborts
    with _in_flight_lock:
        budgets = list(_in_flight)
        _aborts += 1
    for b in budgets:
        b.aborted = True


def abort_count() -> int:
    """How many times abort_in_flight has run: a waiter that sees it change gives up."""
    return _aborts


class FetchBudget:
    """The limits of one download, shared by every connection and read it makes: an overall
    deadline, and after `grace_s` a minimum average rate (bytes received / time elapsed)."""

    def __init__(self, *, deadline_s: float, min_rate_bytes_s: float = 0.0, grace_s: float = 0.0) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + deadline_s
        self.deadline_s = deadline_s
        self.min_rate = min_rate_bytes_s
        self.grace_s = grace_s
        self.received = 0
        self.aborted = False

    def __enter__(self) -> FetchBudget:
        with _in_flight_lock:
            _in_flight.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _in_flight_lock:
            _in_flight.discard(self)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.aborted:
            raise FetchAborted("the download was abandoned: the server is shutting down")
        now = time.monotonic()
        if now >= self.deadline:
            raise FetchTooSlow(f"the download did not finish within {self.deadline_s:.0f} s")
        elapsed = now - self.started
        if self.min_rate > 0 and elapsed > self.grace_s and self.received / elapsed < self.min_rate:
            raise FetchTooSlow(
                f"the source sent {self.received} bytes in {elapsed:.0f} s, under the minimum average"
                f" of {self.min_rate:.0f} bytes/s"
            )

    def slice(self, timeout: float | None) -> tuple[float, float | None]:
        """(how long the next blocking call may wait, when the caller's own timeout ends)."""
        now = time.monotonic()
        until = None if timeout is None else now + timeout
        wait = min(SLICE_S, max(0.0, self.deadline - now))
        if until is not None:
            wait = min(wait, max(0.0, until - now))
        return max(wait, 0.001), until
