"""BlobStore on S3. Clients upload and download with presigned URLs, so media bytes never pass
through Lambda; S3 errors become domain errors here, with `from e`.

Upload rules are signed into the URLs, so S3 itself enforces them: Content-Length (a body of any
other length fails the signature) and, for one-shot uploads, `If-None-Match: *` (a second PUT to the
key gets 412 PreconditionFailed: a used URL cannot replace the original). The multipart completion
carries If-None-Match and the expected object size (`x-amz-mp-object-size`) too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mediaindex.domain.errors import ConflictError, NotFoundError, UnavailableError, ValidationError
from mediaindex.ports.blobs import (
    MAX_PART_NUMBER,
    UPLOAD_ALREADY_COMPLETED,
    UPLOAD_SIZE_MISMATCH,
    BlobInfo,
    BlobStore,
    SignedRequest,
    attachment_disposition,
    upload_headers,
    validate_key,
)

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_BAD_PARTS = frozenset(
    {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML", "InvalidArgument", "InvalidRequest"}
)
# If-None-Match lost: the key holds an object (412), or a concurrent conditional write won (409).
_TAKEN = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_DELETE_BATCH = 1000  # DeleteObjects' limit


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _unavailable(e: Exception) -> UnavailableError:
    return UnavailableError(f"blob storage failed: {type(e).__name__}")


class S3BlobStore(BlobStore):
    def __init__(
        self, bucket: str, client: Any, *, sse: str = "AES256", kms_key_id: str | None = None
    ) -> None:
        self._bucket = bucket
        self._s3 = client
        self._sse: dict[str, str] = {"ServerSideEncryption": sse}
        if kms_key_id:
            self._sse["SSEKMSKeyId"] = kms_key_id

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self._bucket!r})"

    def put_file(self, key: str, path: Path, content_type: str) -> BlobInfo:
        validate_key(key)
        try:
            # upload_file switches to multipart by itself for big derivatives (proxies).
            self._s3.upload_file(
                str(path), self._bucket, key, ExtraArgs={"ContentType": content_type, **self._sse}
            )
        except (ClientError, BotoCoreError) as e:
            raise _unavailable(e) from e
        info = self.head(key)
        if info is None:  # pragma: no cover - S3 is read-after-write consistent
            raise UnavailableError(f"{key!r} vanished after upload")
        return info

    def put_bytes(self, key: str, data: bytes, content_type: str) -> BlobInfo:
        validate_key(key)
        try:
            resp = self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=data, ContentType=content_type, **self._sse
            )
        except (ClientError, BotoCoreError) as e:
            raise _unavailable(e) from e
        return BlobInfo(key, len(data), resp["ETag"].strip('"'), content_type)

    def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        try:
            resp = self._s3.get_object(Bucket=self._bucket, Key=key)
            return bytes(resp["Body"].read())
        except ClientError as e:
            if _code(e) in _NOT_FOUND:
                raise NotFoundError(f"no object {key!r}", code="blob_not_found") from e
            raise _unavailable(e) from e
        except BotoCoreError as e:
            raise _unavailable(e) from e

    def download_file(self, key: str, dest: Path) -> None:
        validate_key(key)
        try:
            self._s3.download_file(self._bucket, key, str(dest))
        except ClientError as e:
            if _code(e) in _NOT_FOUND:
                raise NotFoundError(f"no object {key!r}", code="blob_not_found") from e
            raise _unavailable(e) from e
        except BotoCoreError as e:
            raise _unavailable(e) from e

    def head(self, key: str) -> BlobInfo | None:
        validate_key(key)
        try:
            resp = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as e:
            if _code(e) in _NOT_FOUND:
                return None
            raise _unavailable(e) from e
        except BotoCoreError as e:
            raise _unavailable(e) from e
        return BlobInfo(key, int(resp["ContentLength"]), resp["ETag"].strip('"'), resp.get("ContentType"))

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except (ClientError, BotoCoreError) as e:
            raise _unavailable(e) from e

    def delete_prefix(self, prefix: str) -> int:
        if not validate_key(prefix, prefix=True):
            raise ValidationError("refusing to delete every object (empty prefix)", code="blob_key_invalid")
        deleted = 0
        batch: list[str] = []
        for key in self._iter_keys(prefix):
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                deleted += self._delete_batch(batch)
                batch = []
        if batch:
            deleted += self._delete_batch(batch)
        return deleted

    def list_keys(self, prefix: str) -> list[str]:
        validate_key(prefix, prefix=True)
        return list(self._iter_keys(prefix))

    def presign_put(
        self,
        key: str,
        content_type: str,
        expires_s: int,
        *,
        expected_size: int | None = None,
        one_shot: bool = False,
    ) -> SignedRequest:
        validate_key(key)
        # Content-Type (and Content-Length, If-None-Match) are signed: the client must send exactly
        # these headers (returned in headers). Encryption comes from the bucket's default (set in
        # infra), so clients send no SSE header.
        params: dict[str, Any] = {"Key": key, "ContentType": content_type}
        if expected_size is not None:
            params["ContentLength"] = int(expected_size)
        if one_shot:
            params["IfNoneMatch"] = "*"
        url = self._presign("put_object", params, expires_s)
        return SignedRequest(
            "PUT", url, _expiry(expires_s), upload_headers(content_type, expected_size, one_shot)
        )

    def presign_get(
        self, key: str, expires_s: int, *, filename: str | None = None, content_type: str | None = None
    ) -> SignedRequest:
        validate_key(key)
        params: dict[str, Any] = {"Key": key}
        if filename is not None:
            params["ResponseContentDisposition"] = attachment_disposition(filename)
        if content_type is not None:
            params["ResponseContentType"] = content_type
        return SignedRequest("GET", self._presign("get_object", params, expires_s), _expiry(expires_s))

    def create_multipart(self, key: str, content_type: str) -> str:
        validate_key(key)
        try:
            resp = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=key, ContentType=content_type, **self._sse
            )
        except (ClientError, BotoCoreError) as e:
            raise _unavailable(e) from e
        return str(resp["UploadId"])

    def presign_part(
        self, key: str, upload_id: str, part_number: int, expires_s: int, *, expected_size: int | None = None
    ) -> SignedRequest:
        validate_key(key)
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise ValidationError(
                f"part_number must be 1..{MAX_PART_NUMBER}", code="upload_parts_invalid", field="part_number"
            )
        params: dict[str, Any] = {"Key": key, "UploadId": upload_id, "PartNumber": part_number}
        if expected_size is not None:
            params["ContentLength"] = int(expected_size)  # signed: S3 refuses a part of another length
        return SignedRequest("PUT", self._presign("upload_part", params, expires_s), _expiry(expires_s))

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        *,
        expected_size: int | None = None,
        one_shot: bool = False,
    ) -> BlobInfo:
        validate_key(key)
        ordered = sorted((n, etag.strip('"')) for n, etag in parts)
        numbers = [n for n, _ in ordered]
        if not ordered or len(set(numbers)) != len(numbers):
            raise ValidationError(
                "parts must be listed once each", code="upload_parts_invalid", field="parts"
            )
        if not 1 <= numbers[0] <= numbers[-1] <= MAX_PART_NUMBER:
            raise ValidationError(
                f"part numbers must be 1..{MAX_PART_NUMBER}", code="upload_parts_invalid", field="parts"
            )
        conditions: dict[str, Any] = {}
        if one_shot:
            conditions["IfNoneMatch"] = "*"
        if expected_size is not None:
            conditions["MpuObjectSize"] = int(expected_size)  # S3 checks the parts add up to it
        try:
            resp = self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in ordered]},
                **conditions,
            )
        except ClientError as e:
            code = _code(e)
            if code in _TAKEN:
                raise ConflictError(
                    f"{key!r} has been uploaded already; an upload writes once", code=UPLOAD_ALREADY_COMPLETED
                ) from e
            if code in _BAD_PARTS:
                raise ValidationError(
                    f"the parts do not make a valid upload ({code})",
                    code="upload_parts_invalid",
                    field="parts",
                ) from e
            if code == "NoSuchUpload":
                raise NotFoundError("the multipart upload does not exist", code="upload_not_found") from e
            raise _unavailable(e) from e
        except BotoCoreError as e:
            raise _unavailable(e) from e
        info = self.head(key)
        if info is None:  # pragma: no cover - S3 is read-after-write consistent
            raise UnavailableError(f"{key!r} vanished after completing its upload")
        if expected_size is not None and info.size != expected_size:
            # S3 refuses this itself (x-amz-mp-object-size); a store that ignores the header (moto)
            # must not leave an object of the wrong size either.
            self.delete(key)
            raise ValidationError(
                f"the parts add up to {info.size} bytes, not the {expected_size} declared",
                code=UPLOAD_SIZE_MISMATCH,
                field="parts",
            )
        return BlobInfo(key, info.size, resp.get("ETag", info.etag).strip('"'), info.content_type)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        validate_key(key)
        try:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except ClientError as e:
            # Idempotent: an unknown or finished upload has nothing left to abort.
            if _code(e) in ("NoSuchUpload", *_NOT_FOUND):
                return
            raise _unavailable(e) from e
        except BotoCoreError as e:
            raise _unavailable(e) from e

    # ---- internals -----------------------------------------------------------------------------
    def _presign(self, operation: str, params: dict[str, Any], expires_s: int) -> str:
        # Presigning is local computation (no request), so it cannot fail on S3's side.
        return str(
            self._s3.generate_presigned_url(
                operation, Params={"Bucket": self._bucket, **params}, ExpiresIn=int(expires_s)
            )
        )

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix
            ):
                for obj in page.get("Contents", []):
                    yield str(obj["Key"])
        except (ClientError, BotoCoreError) as e:
            raise _unavailable(e) from e

    def _delete_batch(self, keys: list[str]) -> int:
        try:
            resp = self._s3.delete_objects(
                Bucket=self._bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        except (ClientError, BotoCoreError) as e:
            raise _unavailable(e) from e
        errors = resp.get("Errors", [])
        if errors:
            raise UnavailableError(f"{len(errors)} of {len(keys)} objects could not be deleted")
        return len(keys)


def _expiry(expires_s: int) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=int(expires_s))
