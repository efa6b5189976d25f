"""SecretBox on AWS: KMS Encrypt/Decrypt under the stack's key, the owner (tenant/webhook) as
encryption context. The API only encrypts (kms:Encrypt), the delivery Lambda only decrypts."""

from __future__ import annotations

import base64
from typing import Any

from mediaindex.ports.webhooks import SecretBox

_CONTEXT_KEY = "mediaindex:webhook"


class KmsSecretBox(SecretBox):
    def __init__(self, key_id: str, kms: Any) -> None:
        self._key_id = key_id
        self._kms = kms

    def seal(self, secret: str, *, context: str) -> str:
        resp = self._kms.encrypt(
            KeyId=self._key_id, Plaintext=secret.encode(), EncryptionContext={_CONTEXT_KEY: context}
        )
        return "kms:" + base64.b64encode(resp["CiphertextBlob"]).decode()

    def open(self, sealed: str, *, context: str) -> str:
        kind, _, data = sealed.partition(":")
        if kind != "kms":
            raise ValueError(f"not a KMS-sealed secret ({kind!r})")
        resp = self._kms.decrypt(
            CiphertextBlob=base64.b64decode(data),
            KeyId=self._key_id,
            EncryptionContext={_CONTEXT_KEY: context},
        )
        return bytes(resp["Plaintext"]).decode()
