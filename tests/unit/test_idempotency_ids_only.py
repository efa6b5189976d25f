"""IdempotencyService keeps a response by reference when its route passes a `Rebuild`: the stored
record holds the ids only, a replay makes the body again; records kept whole (small responses, or
written by earlier releases) replay as stored."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mediaindex.adapters.local.sqlite import open_stores
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import IdempotencyRecord, utcnow
from mediaindex.ports.idempotency import IdempotencyRepository
from mediaindex.services.idempotency import REFERENCE_KEY, IdempotencyService, Rebuild

TENANT = "ten_1"
BIG_BODY = {"id": "ast_1", "urls": ["https://example.test/part?sig=" + "x" * 1700] * 100}


@pytest.fixture
def records(tmp_path: Path) -> IdempotencyRepository:
    db = Database(tmp_path / "idem.db")
    db.migrate()
    return open_stores(db).idempotency


class Calls:
    """Counts runs of `execute` and of the rebuild, and answers what each is told to."""

    def __init__(self, body: Any = BIG_BODY) -> None:
        self.body = body
        self.runs = 0
        self.rebuilt: list[dict[str, Any]] = []

    def execute(self) -> tuple[int, Any]:
        self.runs += 1
        return 201, self.body

    def rebuild(self) -> Rebuild:
        def ids(body: Any) -> dict[str, Any] | None:
            return {"id": body["id"]} if "urls" in body else None

        def body(found: dict[str, Any]) -> Any:
            self.rebuilt.append(found)
            return {"id": found["id"], "urls": ["fresh"]}

        return Rebuild(ids=ids, body=body)


def test_a_big_response_is_stored_as_its_ids_and_rebuilt_on_replay(records: IdempotencyRepository) -> None:
    service, calls = IdempotencyService(records, 3600), Calls()
    # Given a keyed request whose route keeps its response by reference
    first = service.run(TENANT, "k", "fp", calls.execute, rebuild=calls.rebuild())
    # Then the first answer is the full body, and the record holds the ids alone
    assert first == (201, BIG_BODY, False)
    stored = records.get(TENANT, f"{TENANT}:k")
    assert stored is not None and stored.body == {REFERENCE_KEY: {"id": "ast_1"}}
    assert stored.status_code == 201
    assert len(stored.model_dump_json()) < 500 < len(str(BIG_BODY))
    # And a replay rebuilds the body from those ids without running the request again
    again = service.run(TENANT, "k", "fp", calls.execute, rebuild=calls.rebuild())
    assert again == (201, {"id": "ast_1", "urls": ["fresh"]}, True)
    assert calls.runs == 1 and calls.rebuilt == [{"id": "ast_1"}]


def test_a_response_the_route_does_not_reference_is_kept_whole(records: IdempotencyRepository) -> None:
    service, calls = IdempotencyService(records, 3600), Calls(body={"id": "ast_2"})
    service.run(TENANT, "k", "fp", calls.execute, rebuild=calls.rebuild())
    stored = records.get(TENANT, f"{TENANT}:k")
    assert stored is not None and stored.body == {"id": "ast_2"}
    assert service.run(TENANT, "k", "fp", calls.execute, rebuild=calls.rebuild()) == (
        201,
        {"id": "ast_2"},
        True,
    )
    assert calls.runs == 1 and calls.rebuilt == []


def test_a_whole_body_record_of_an_earlier_release_replays_as_stored(records: IdempotencyRepository) -> None:
    # Given a record written whole, as releases before references wrote every one
    records.put(
        IdempotencyRecord(
            tenant_id=TENANT,
            key=f"{TENANT}:old",
            request_hash="fp",
            status_code=201,
            body=BIG_BODY,
            expires_at=utcnow() + timedelta(hours=1),
        )
    )
    calls = Calls()
    # Then its route, which now keeps references, replays the stored body and rebuilds nothing
    got = IdempotencyService(records, 3600).run(TENANT, "old", "fp", calls.execute, rebuild=calls.rebuild())
    assert got == (201, BIG_BODY, True)
    assert calls.runs == 0 and calls.rebuilt == []


def test_another_request_on_a_referenced_key_is_refused_before_any_rebuild(
    records: IdempotencyRepository,
) -> None:
    service, calls = IdempotencyService(records, 3600), Calls()
    service.run(TENANT, "k", "fp", calls.execute, rebuild=calls.rebuild())
    with pytest.raises(ConflictError) as exc:
        service.run(TENANT, "k", "other-fp", calls.execute, rebuild=calls.rebuild())
    assert exc.value.code == "idempotency_key_reused"
    assert calls.runs == 1 and calls.rebuilt == []


def test_a_referenced_record_replayed_without_a_rebuild_is_an_error(records: IdempotencyRepository) -> None:
    service, calls = IdempotencyService(records, 3600), Calls()
    service.run(TENANT, "k", "fp", calls.execute, rebuild=calls.rebuild())
    with pytest.raises(RuntimeError, match="kept by reference"):
        service.run(TENANT, "k", "fp", calls.execute)
    assert calls.runs == 1


def test_a_failed_rebuild_is_the_replay_s_answer_and_the_record_stays(records: IdempotencyRepository) -> None:
    service, calls = IdempotencyService(records, 3600), Calls()
    service.run(TENANT, "k", "fp", calls.execute, rebuild=calls.rebuild())

    def gone(_: dict[str, Any]) -> Any:
        raise NotFoundError("asset ast_1 not found", code="asset_not_found")

    # When what the record names is gone, the replay answers that, and runs nothing again
    with pytest.raises(NotFoundError):
        service.run(TENANT, "k", "fp", calls.execute, rebuild=Rebuild(ids=calls.rebuild().ids, body=gone))
    assert calls.runs == 1
    stored = records.get(TENANT, f"{TENANT}:k")
    assert stored is not None and stored.body == {REFERENCE_KEY: {"id": "ast_1"}}
