"""Tenants, their API keys and their quotas. Keys are found by the sha256 of the key (the key is
never stored); that lookup is authentication, so it is the one read that comes before a tenant is
known."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from mediaindex.domain.models import ApiKey, Tenant
from mediaindex.domain.quotas import Quotas

# Fields added to ApiKey after the first release: left out of the stored document while unset, so
# a key made the old way is stored exactly as before (tests/contract/release_sample.py).
_LATER_FIELDS = ("scope", "name", "last4", "expires_at", "revoked_at", "last_used_at", "rotated_to")


def key_document(key: ApiKey) -> str:
    """The JSON document both adapters store for a key."""
    unset = {f for f in _LATER_FIELDS if getattr(key, f) == ApiKey.model_fields[f].default}
    return key.model_dump_json(exclude=unset)


class KeyRepository(ABC):
    @abstractmethod
    def create_tenant(self, tenant: Tenant) -> Tenant:
        """ConflictError(`tenant_name_already_exists`) when the name is taken."""

    @abstractmethod
    def get_tenant_by_name(self, name: str) -> Tenant | None: ...

    @abstractmethod
    def put_key(self, key: ApiKey) -> None:
        """Writes the key (insert or replace: revoking rewrites it)."""

    @abstractmethod
    def get_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """Strongly consistent: a revoked key is refused at once."""

    @abstractmethod
    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys, revoked ones included, newest first (a tenant has at most
        domain.keys.MAX_KEYS_PER_TENANT live ones)."""

    @abstractmethod
    def touch_key(self, key: ApiKey, at: datetime) -> None:
        """Sets only `last_used_at`, leaving the rest of the stored key as it is now (a revocation
        written meanwhile stays); nothing when the key is gone."""

    @abstractmethod
    def get_quotas(self, tenant_id: str) -> Quotas | None:
        """The quotas an admin set for the tenant; None when none were."""

    @abstractmethod
    def put_quotas(self, tenant_id: str, quotas: Quotas) -> None: ...

    @abstractmethod
    def count_request(self, tenant_id: str, window_start: int, limit: int) -> bool:
        """Counts one request of the tenant in the window starting at `window_start` (epoch
        seconds) unless `limit` are counted already: False then. Shared by every process that
        serves the tenant (on the local runtime that is one process)."""

    @abstractmethod
    def requests_counted(self, tenant_id: str, window_start: int) -> int:
        """How many requests `count_request` counted in that window (0 for an unknown one)."""
