"""The wire format of /v1/keys: a key as listed (never its secret), and as created or rotated
(with its secret, shown that once)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from mediaindex.api.schemas.base import Strict
from mediaindex.domain.keys import DEFAULT_OVERLAP_S, MAX_OVERLAP_S, KeyScope
from mediaindex.domain.models import ApiKey

SCOPE = (
    "What the key may call: `admin` (everything, and managing keys and quotas), `read_write` "
    "(everything but keys and changing quotas), `read_only` (GET and HEAD, `POST /v1/search` and "
    "`POST /v1/assets/batch-get`), `search_only` (`POST /v1/search` and `GET /v1/capabilities` only: "
    "safe to ship to a browser)."
)
NAME = "A label for people, to tell keys apart."
EXPIRES_AT = "When the key stops working (UTC); null: never."


class KeyCreate(Strict):
    # Not strict: JSON has no enum or time type; these come as strings.
    scope: KeyScope = Field(KeyScope.READ_WRITE, strict=False, description=SCOPE + " Default: `read_write`.")
    name: str | None = Field(None, min_length=1, max_length=200, description=NAME, examples=["ci"])
    expires_at: AwareDatetime | None = Field(
        None,
        strict=False,
        description=EXPIRES_AT + " Must be in the future; an ISO 8601 time with its offset.",
        examples=["2030-01-01T00:00:00Z"],
    )


class KeyRotate(Strict):
    overlap_s: int = Field(
        DEFAULT_OVERLAP_S,
        ge=0,
        le=MAX_OVERLAP_S,
        description=f"How long the old key keeps working, in seconds (0 to {MAX_OVERLAP_S}, 7 days). "
        f"Default: {DEFAULT_OVERLAP_S} (24 h).",
    )


class KeyOut(BaseModel):
    id: str = Field(description="The key's id (not the key).", examples=["key_01j9zq4m3v8c2k7r5t6w0y1x2a"])
    name: str | None = Field(description=NAME)
    scope: KeyScope = Field(description=SCOPE)
    prefix: str = Field(description="The key's first characters.", examples=["mi_AbCd"])
    last4: str | None = Field(
        description="The key's last 4 characters; null for keys made before they were kept.",
        examples=["x9Qz"],
    )
    created_at: datetime = Field(description="When the key was made (UTC).")
    expires_at: datetime | None = Field(
        description=EXPIRES_AT + " A rotated key's is the end of its overlap."
    )
    last_used_at: datetime | None = Field(
        description="When the key last authenticated a request (UTC; written at most once a minute)."
    )
    revoked: bool = Field(description="Whether the key was revoked (it is then refused).")
    revoked_at: datetime | None = Field(description="When it was revoked (UTC).")
    rotated_to: str | None = Field(description="The id of the key that replaced this one by rotation.")

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            scope=key.scope,
            prefix=key.prefix,
            last4=key.last4,
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked=key.revoked,
            revoked_at=key.revoked_at,
            rotated_to=key.rotated_to,
        )


class KeyCreated(KeyOut):
    key: str = Field(
        description="The key itself. Shown this once: only its hash is stored.", examples=["mi_AbCd..."]
    )

    @classmethod
    def made(cls, key: ApiKey, raw: str) -> KeyCreated:
        return cls(**KeyOut.of(key).model_dump(), key=raw)


class KeyList(BaseModel):
    data: list[KeyOut] = Field(description="The tenant's keys, revoked ones included, newest first.")
