"""Idempotency under concurrency, on both runtimes: identical keyed requests racing each other run
once. Before the reservation (check, run and record were three steps) 16 concurrent keyed creates
stored 2-3 assets locally and 15-16 on the AWS runtime."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mediaindex.bootstrap import Runtime
from mediaindex.domain.errors import ConflictError
from mediaindex.services.idempotency import IdempotencyService
from tests.apiclient import Api, error_code

THREADS = 16
ROUNDS = 10


def _race(api: Api, index_id: str, key: str) -> list[tuple[int, Any, str | None]]:
    start = threading.Barrier(THREADS)
    body = {"index_id": index_id, "name": "race.mp4", "size_bytes": 1000}

    def one(_: int) -> tuple[int, Any, str | None]:
        start.wait()
        resp = api.call("POST", "/v1/assets", json=body, headers={"Idempotency-Key": key})
        return resp.status_code, resp.json(), resp.headers.get("idempotent-replayed")

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, range(THREADS)))


def test_sixteen_identical_keyed_creates_store_one_asset(api: Api) -> None:
    idx = api.index("race")
    in_progress = 0
    for round_ in range(ROUNDS):
        # Given 16 clients sending the same keyed create at the same instant
        results = _race(api, idx["id"], f"race-key-{round_}")
        # Then one ran: every 201 carries the same asset, the others were told to retry
        created = [body for status, body, _ in results if status == 201]
        others = [(status, body) for status, body, _ in results if status != 201]
        assert created, results
        assert len({b["asset"]["id"] for b in created}) == 1, created
        assert all(b == created[0] for b in created)
        for status, body in others:
            assert status == 409 and body["error"]["code"] == "idempotency_request_in_progress", body
        in_progress += len(others)
        assert sum(1 for _, _, replayed in results if replayed == "true") == len(created) - 1
    # And the index holds exactly one asset per key
    listed = api.ok("GET", "/v1/assets", params={"index_id": idx["id"], "limit": 100})["data"]
    assert len(listed) == ROUNDS, [a["id"] for a in listed]
    print(
        f"idempotency race: {ROUNDS} rounds x {THREADS} threads -> {len(listed)} assets, {in_progress} x 409"
    )


def _service(runtime: Runtime, wait_s: float) -> IdempotencyService:
    return IdempotencyService(runtime.stores.idempotency, 24 * 3600, lease_s=30, wait_s=wait_s)


def test_a_twin_waits_for_the_winner_then_replays_or_is_told_it_is_in_progress(runtime: Runtime) -> None:
    service = _service(runtime, wait_s=0.3)
    release = threading.Event()
    runs: list[int] = []

    def slow() -> tuple[int, Any]:
        runs.append(1)
        release.wait(10)
        return 201, {"id": "ast_1"}

    with ThreadPoolExecutor(2) as pool:
        winner = pool.submit(service.run, "ten_a", "k", "fp", slow)
        while not runs:
            time.sleep(0.01)
        # A twin arriving while the winner runs longer than the twin's wait: 409 in progress
        with pytest.raises(ConflictError) as exc:
            service.run("ten_a", "k", "fp", slow)
        assert exc.value.code == "idempotency_request_in_progress"
        # The key with another body while it is held: reused, as for a completed key
        with pytest.raises(ConflictError) as exc:
            service.run("ten_a", "k", "another-body", slow)
        assert exc.value.code == "idempotency_key_reused"
        # A twin that can wait long enough replays the winner's answer, without running
        patient = _service(runtime, wait_s=5)
        later = pool.submit(patient.run, "ten_a", "k", "fp", lambda: (500, None))
        time.sleep(0.1)
        release.set()
        assert winner.result(10) == (201, {"id": "ast_1"}, False)
        assert later.result(10) == (201, {"id": "ast_1"}, True)
    assert len(runs) == 1


def test_a_failed_run_releases_the_key(runtime: Runtime) -> None:
    service = _service(runtime, wait_s=0)

    def boom() -> tuple[int, Any]:
        raise RuntimeError("outage")

    with pytest.raises(RuntimeError):
        service.run("ten_a", "k2", "fp", boom)
    assert service.run("ten_a", "k2", "fp", lambda: (400, {"error": "bad"})) == (400, {"error": "bad"}, False)
    # Neither failure was remembered: the third try runs and is the one replayed
    assert service.run("ten_a", "k2", "fp", lambda: (201, {"id": 3})) == (201, {"id": 3}, False)
    assert service.run("ten_a", "k2", "fp", lambda: (201, {"id": 4})) == (201, {"id": 3}, True)


def test_an_idempotency_key_of_10_kb_is_refused(api: Api) -> None:
    idx = api.index("long-key")
    resp = api.call(
        "POST",
        "/v1/assets",
        json={"index_id": idx["id"], "name": "a.mp4"},
        headers={"Idempotency-Key": "k" * 10_000},
    )
    assert resp.status_code == 400 and error_code(resp) == "parameter_invalid", resp.text
    assert api.ok("GET", "/v1/assets", params={"index_id": idx["id"]})["data"] == []
