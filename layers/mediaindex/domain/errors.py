"""Domain errors. Each carries the contract's snake_case code; the API maps classes to HTTP statuses
in one place (mediaindex.api.errors). Adapters translate storage errors into these with `from e`."""

from __future__ import annotations


class MediaindexError(Exception):
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.field = field


class ValidationError(MediaindexError):
    code = "parameter_invalid"


class NotFoundError(MediaindexError):
    code = "not_found"


class ConflictError(MediaindexError):
    code = "conflict"


class UnauthorizedError(MediaindexError):
    code = "unauthorized"


class SignatureError(MediaindexError):
    code = "signature_invalid"


class ForbiddenError(MediaindexError):
    """A valid key that may not do this (`scope_insufficient`, `quota_exceeded`)."""

    code = "forbidden"


class PayloadTooLargeError(MediaindexError):
    code = "payload_too_large"


class RateLimitedError(MediaindexError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnavailableError(MediaindexError):
    code = "service_unavailable"


class MediaError(MediaindexError):
    """A file that is not usable media: `unsupported_media`, `media_corrupt`, `asset_file_empty`,
    `media_too_large`. Ends the asset `failed`; never retried."""

    code = "media_corrupt"


class StepFailedError(MediaindexError):
    """A pipeline step failed in a way that may pass on retry (a crash, a timeout)."""

    code = "step_failed"
