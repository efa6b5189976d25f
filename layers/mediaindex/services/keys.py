"""Tenants and API keys. A key is shown once; only its sha256 is stored. Keys are 256-bit random,
so a plain hash is enough (no slow KDF needed) and lookups stay O(1)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from mediaindex.domain.errors import ConflictError, UnauthorizedError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import ApiKey, Tenant
from mediaindex.ports.keys import KeyRepository

KEY_PREFIX = "mi_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class KeyService:
    def __init__(self, keys: KeyRepository) -> None:
        self._keys = keys

    def create_key(self, tenant_name: str) -> tuple[Tenant, ApiKey, str]:
        """Creates the tenant when it is new; returns (tenant, key record, the raw key to show once)."""
        tenant = self._tenant(tenant_name)
        raw = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id=new_id("key"), tenant_id=tenant.id, key_hash=hash_key(raw), prefix=raw[:7])
        self._keys.put_key(key)
        return tenant, key, raw

    def ensure_key(self, tenant_name: str, raw: str) -> ApiKey:
        """Makes sure a key chosen elsewhere (the deployment's bootstrap secret) works for
        `tenant_name`. Idempotent: a key whose hash is already stored is left as it is."""
        if len(raw) < 32:
            raise ValueError("a bootstrap key must be at least 32 characters")
        digest = hash_key(raw)
        existing = self._keys.get_key_by_hash(digest)
        if existing is not None:
            return existing
        tenant = self._tenant(tenant_name)
        key = ApiKey(id=new_id("key"), tenant_id=tenant.id, key_hash=digest, prefix=raw[:7])
        try:
            self._keys.put_key(key)
        except ConflictError:  # another cold start stored it first
            stored = self._keys.get_key_by_hash(digest)
            assert stored is not None
            return stored
        return key

    def _tenant(self, name: str) -> Tenant:
        tenant = self._keys.get_tenant_by_name(name)
        if tenant is None:
            try:
                tenant = self._keys.create_tenant(Tenant(id=new_id("ten"), name=name))
            except ConflictError:  # created concurrently: use the winner
                tenant = self._keys.get_tenant_by_name(name)
                assert tenant is not None
        return tenant

    def authenticate(self, raw: str | None) -> ApiKey:
        if not raw:
            raise UnauthorizedError("missing API key: send Authorization: Bearer <key> or x-api-key")
        digest = hash_key(raw)
        key = self._keys.get_key_by_hash(digest)
        # compare_digest keeps the final check constant-time even though the lookup is by hash.
        if key is None or key.revoked or not hmac.compare_digest(key.key_hash, digest):
            raise UnauthorizedError("invalid API key")
        return key
