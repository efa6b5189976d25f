"""Tenants and their API keys. Keys are found by the sha256 of the key (the key is never stored);
that lookup is authentication, so it is the one read that comes before a tenant is known."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mediaindex.domain.models import ApiKey, Tenant


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
