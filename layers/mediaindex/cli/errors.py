"""Exit codes, and the expected failure that ends a command with one `error: ...` line."""

from __future__ import annotations

import sys

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_CONNECTION = 4
EXIT_IN_USE = 5
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An expected failure: printed as one `error: ...` line, exiting with `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
