"""Idempotency records: the first response to a POST with an Idempotency-Key, per tenant.

A key moves through two states in one stored slot: `reserve` takes it with a Pending reservation
(a conditional write: one request of many racing twins wins), then `complete` replaces the
reservation with the completed IdempotencyRecord, or `release` removes it when the run failed.
A reservation carries a lease: one whose holder died reads as absent once `lease_until` passes.
Completed records written by earlier releases (before reservations existed) read as they did.
A record's body is opaque to adapters: the service stores either the response or, for a response
too big to keep (signed URLs), the few ids it is rebuilt from; both are stored and read unchanged."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from mediaindex.domain.models import IdempotencyRecord


@dataclass(frozen=True)
class Pending:
    """A key reserved by a request still running. `token` tells this reservation from a later one
    on the same key (after its lease ran out)."""

    tenant_id: str
    key: str
    request_hash: str
    token: str
    lease_until: datetime


class IdempotencyRepository(ABC):
    @abstractmethod
    def get(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        """The completed record. Expired records and reservations read as None."""

    @abstractmethod
    def put(self, record: IdempotencyRecord) -> None:
        """ConflictError when a live record or reservation with that key exists."""

    @abstractmethod
    def lookup(self, tenant_id: str, key: str) -> IdempotencyRecord | Pending | None:
        """What holds the key now: a completed record, a reservation whose lease holds, or None."""

    @abstractmethod
    def reserve(self, pending: Pending) -> bool:
        """Takes the key for `pending`, atomically: True when nothing live held it (no record, an
        expired one, or a reservation whose lease ran out), else False and nothing is written."""

    @abstractmethod
    def complete(self, record: IdempotencyRecord, token: str) -> bool:
        """Replaces the reservation `token` with `record`. False (and nothing written) when that
        reservation is no longer there (its lease ran out and another request took the key)."""

    @abstractmethod
    def release(self, tenant_id: str, key: str, token: str) -> None:
        """Removes the reservation `token`; nothing when the key is held by anything else."""
