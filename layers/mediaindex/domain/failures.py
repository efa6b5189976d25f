"""How a failure reads to a client: the error code and a message with no server paths or memory
addresses from tool output. Shared by every executor, so a failure reads the same wherever it ran."""

from __future__ import annotations

import re

from mediaindex.domain.errors import MediaError
from mediaindex.domain.models import ErrorInfo

_PATHS = re.compile(r"(/[\w.+-]+)+/?")
_POINTERS = re.compile(r"\s*@\s*0x[0-9a-f]+", re.IGNORECASE)
# Codes that blame the file itself: the asset fails with them, not only the feature.
_MEDIA_CODE_PREFIXES = ("asset_", "media_", "unsupported")


def public_message(message: str) -> str:
    return _PATHS.sub("<file>", _POINTERS.sub("", message))[:500]


def error_info(exc: BaseException) -> ErrorInfo:
    if isinstance(exc, MediaError):
        return ErrorInfo(code=exc.code, message=public_message(exc.message))
    return ErrorInfo(
        code="step_failed", message=f"the step failed ({type(exc).__name__}); it is logged on the server"
    )


def is_media_error_code(code: str) -> bool:
    return code.startswith(_MEDIA_CODE_PREFIXES)
