"""SecretBox for the local runtime: AES-256-GCM, the sealed secret's owner as associated data (a
sealed value copied to another webhook does not open). The key comes from the setting, else from
`webhook-secrets.key` in the data dir, made on first use with mode 0600."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mediaindex.ports.webhooks import SecretBox

KEY_FILE = "webhook-secrets.key"
_VERSION = "v1"


def load_or_create_key(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it just now
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return parse_key(path.read_text().strip())


def parse_key(hex_key: str) -> bytes:
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError("the webhook secret key must be 32 bytes as 64 hex characters")
    return key


class AesGcmSecretBox(SecretBox):
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, secret: str, *, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), context.encode())
        return f"{_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, *, context: str) -> str:
        version, _, data = sealed.partition(":")
        if version != _VERSION:
            raise ValueError(f"unknown sealed secret version {version!r}")
        raw = base64.urlsafe_b64decode(data)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as e:
            raise ValueError("the sealed secret does not open with this key and owner") from e
