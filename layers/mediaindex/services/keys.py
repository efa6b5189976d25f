"""Tenants and API keys. A key is shown once; only its sha256 is stored. Keys are 256-bit random,
so a plain hash is enough (no slow KDF needed) and lookups stay O(1).

Authentication reads the key from the store on every request (no cache on either runtime), so a
revocation or an expiry is refused on the very next request. Unknown, revoked and expired keys all
answer the same 401 `unauthorized`: whoever holds a key learns nothing about whether it was ever
valid, nor whether its theft was noticed (docs/tenants.md)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from mediaindex.domain.errors import ConflictError, NotFoundError, UnauthorizedError, ValidationError
from mediaindex.domain.ids import new_id
from mediaindex.domain.keys import (
    DEFAULT_OVERLAP_S,
    MAX_KEYS_PER_TENANT,
    MAX_OVERLAP_S,
    KeyScope,
    is_expired,
    needs_touch,
    overlap_end,
)
from mediaindex.domain.models import ApiKey, Tenant, utcnow
from mediaindex.ports.keys import KeyRepository

log = logging.getLogger(__name__)

KEY_PREFIX = "mi_"
Clock = Callable[[], datetime]


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _live(key: ApiKey, now: datetime) -> bool:
    return not key.revoked and not is_expired(key.expires_at, now)


class KeyService:
    def __init__(self, keys: KeyRepository, *, clock: Clock = utcnow) -> None:
        self._keys = keys
        self._now = clock

    def create_key(
        self,
        tenant_name: str,
        *,
        scope: KeyScope = KeyScope.ADMIN,
        name: str | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[Tenant, ApiKey, str]:
        """Creates the tenant when it is new; returns (tenant, key record, the raw key to show once)."""
        tenant = self._tenant(tenant_name)
        key, raw = self._new_key(tenant.id, scope, name, expires_at)
        return tenant, key, raw

    def create_tenant_key(
        self, tenant_id: str, *, scope: KeyScope, name: str | None, expires_at: datetime | None
    ) -> tuple[ApiKey, str]:
        """A new key of the caller's tenant (an admin key's): (record, the raw key to show once)."""
        if expires_at is not None and is_expired(expires_at, self._now()):
            raise ValidationError("expires_at must be in the future", field="expires_at")
        live = [k for k in self._keys.list_keys(tenant_id) if _live(k, self._now())]
        if len(live) >= MAX_KEYS_PER_TENANT:
            raise ConflictError(
                f"a tenant has at most {MAX_KEYS_PER_TENANT} live keys; revoke one first",
                code="key_limit_reached",
            )
        return self._new_key(tenant_id, scope, name, expires_at)

    def _new_key(
        self, tenant_id: str, scope: KeyScope, name: str | None, expires_at: datetime | None
    ) -> tuple[ApiKey, str]:
        raw = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=new_id("key"),
            tenant_id=tenant_id,
            key_hash=hash_key(raw),
            prefix=raw[:7],
            last4=raw[-4:],
            scope=scope,
            name=name,
            expires_at=expires_at,
            created_at=self._now(),
        )
        self._keys.put_key(key)
        return key, raw

    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        return self._keys.list_keys(tenant_id)

    def get_key(self, tenant_id: str, key_id: str) -> ApiKey:
        """The key as stored now (the listing may lag on DynamoDB; the key itself does not)."""
        for listed in self._keys.list_keys(tenant_id):
            if listed.id == key_id:
                current = self._keys.get_key_by_hash(listed.key_hash)
                if current is not None and current.tenant_id == tenant_id:
                    return current
        raise NotFoundError(f"API key {key_id} not found", code="key_not_found")

    def revoke(self, tenant_id: str, key_id: str, *, by_key_id: str | None = None) -> ApiKey:
        """Revokes at once. Idempotent. An admin key may not revoke itself (that could leave a
        tenant with no admin key): 409 `key_is_caller`."""
        if key_id == by_key_id:
            raise ConflictError(
                "a key cannot revoke itself; use another admin key", code="key_is_caller", field="key_id"
            )
        key = self.get_key(tenant_id, key_id)
        if key.revoked:
            return key
        revoked = key.model_copy(update={"revoked": True, "revoked_at": self._now()})
        self._keys.put_key(revoked)
        log.info("api key revoked", extra={"tenant_id": tenant_id, "key_id": key_id})
        return revoked

    def rotate(
        self, tenant_id: str, key_id: str, *, overlap_s: int = DEFAULT_OVERLAP_S
    ) -> tuple[ApiKey, str]:
        """A new key with the old one's scope, name and expiry; the old one keeps working for
        `overlap_s` seconds (0 to MAX_OVERLAP_S), then is refused. Returns (new key, raw key)."""
        if not 0 <= overlap_s <= MAX_OVERLAP_S:
            raise ValidationError(f"overlap_s must be 0 to {MAX_OVERLAP_S}", field="overlap_s")
        now = self._now()
        old = self.get_key(tenant_id, key_id)
        if not _live(old, now):
            raise ConflictError("only a live key can be rotated", code="key_not_active")
        new, raw = self._new_key(tenant_id, old.scope, old.name, old.expires_at)
        ends = overlap_end(now, overlap_s)
        if old.expires_at is not None and old.expires_at < ends:
            ends = old.expires_at
        self._keys.put_key(old.model_copy(update={"expires_at": ends, "rotated_to": new.id}))
        return new, raw

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
        key = ApiKey(
            id=new_id("key"),
            tenant_id=tenant.id,
            key_hash=digest,
            prefix=raw[:7],
            last4=raw[-4:],
            name="bootstrap",
        )
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
        now = self._now()
        # compare_digest keeps the final check constant-time even though the lookup is by hash.
        if key is None or not _live(key, now) or not hmac.compare_digest(key.key_hash, digest):
            raise UnauthorizedError("invalid API key")
        if needs_touch(key.last_used_at, now):
            self._keys.touch_key(key, now)
            key = key.model_copy(update={"last_used_at": now})
        return key
