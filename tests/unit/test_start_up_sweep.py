"""The AWS runtime resumes unfinished index purges at start on a thread of its own: the first
request never waits for the ledger's Query, and an unreadable ledger is only logged."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from mediaindex.bootstrap.aws import _start_up_sweep


class Ledger:
    def __init__(self, pending: list[Any] | Exception) -> None:
        self._pending = pending
        self.asked = threading.Event()
        self.release = threading.Event()

    def pending(self, *, limit: int) -> list[Any]:
        self.asked.set()
        self.release.wait(5)
        if isinstance(self._pending, Exception):
            raise self._pending
        return self._pending[:limit]


class Indexes:
    def __init__(self) -> None:
        self.budgets: list[float] = []

    def resume_purges(self, *, budget_s: float) -> int:
        self.budgets.append(budget_s)
        return 1


def test_the_sweep_runs_beside_the_start_and_resumes_pending_purges() -> None:
    ledger, indexes = Ledger([("ten_a", "idx_1")]), Indexes()
    thread = _start_up_sweep(indexes, ledger, 20.0)  # type: ignore[arg-type]
    # The start returned while the ledger's Query is still in flight
    assert thread is not None and ledger.asked.wait(5) and thread.is_alive()
    ledger.release.set()
    thread.join(5)
    assert indexes.budgets == [20.0]


def test_nothing_pending_or_no_budget_purges_nothing(caplog: pytest.LogCaptureFixture) -> None:
    ledger, indexes = Ledger([]), Indexes()
    ledger.release.set()
    thread = _start_up_sweep(indexes, ledger, 20.0)  # type: ignore[arg-type]
    assert thread is not None
    thread.join(5)
    assert indexes.budgets == []
    assert _start_up_sweep(indexes, ledger, 0.0) is None  # type: ignore[arg-type]


def test_an_unreadable_ledger_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    ledger, indexes = Ledger(EndpointConnectionError(endpoint_url="https://dynamodb")), Indexes()
    ledger.release.set()
    with caplog.at_level(logging.WARNING):
        thread = _start_up_sweep(indexes, ledger, 20.0)  # type: ignore[arg-type]
        assert thread is not None
        thread.join(5)
    assert indexes.budgets == []
    assert any("purge ledger unreadable" in r.getMessage() for r in caplog.records)
