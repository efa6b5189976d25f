"""The loader of `query_image_url` for searches (`ImageFetcher`): the same guarded, pinned and
budgeted download as asset_url, capped at 20 MiB and a short deadline, run on a bounded pool of
threads of its own. A search that finds every slot busy is refused at once (503 `service_busy`),
and a waiting request thread gives up at once when the server shuts down."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediaindex.domain.errors import MediaError, UnavailableError, ValidationError
from mediaindex.net.budget import SLICE_S, FetchAborted, abort_count
from mediaindex.net.url_guard import Resolver, system_resolver

if TYPE_CHECKING:
    import httpcore

MAX_QUERY_IMAGE_BYTES = 20 * 1024 * 1024


class ImageFetcher:
    """The loader of `query_image_url`: the same guard as asset_url, capped at 20 MiB and at
    `deadline_s`, run on at most `slots` threads of its own. A search that finds every slot busy
    is refused at once (503 `service_busy`) rather than queued, so slow image URLs can hold at most
    `slots` of the API's request threads, each for at most `deadline_s`. A bad URL is the caller's
    error (400), never a crash."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout_s: float,
        max_redirects: int,
        deadline_s: float = 15.0,
        slots: int = 4,
        resolver: Resolver = system_resolver,
        connect_via: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._timeout_s = timeout_s
        self._max_redirects = max_redirects
        self._deadline_s = deadline_s
        self._slots = threading.BoundedSemaphore(slots)
        self._resolver = resolver
        self._connect_via = connect_via

    def __call__(self, url: str) -> bytes:
        if not self._slots.acquire(blocking=False):
            raise UnavailableError(
                "too many searches are fetching their query image; retry shortly", code="service_busy"
            )
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["data"] = self._fetch(url)
            except BaseException as e:  # noqa: BLE001 - handed to the waiting request thread
                box["error"] = e
            finally:
                self._slots.release()
                done.set()

        aborts = abort_count()
        threading.Thread(target=work, name="mi-image-fetch", daemon=True).start()
        # The fetch ends itself at its deadline; the margin covers a resolver that hangs. The
        # request thread stops waiting at once when the server shuts down.
        give_up = time.monotonic() + self._deadline_s + 2.0
        while not done.wait(SLICE_S):
            if abort_count() != aborts:
                raise UnavailableError("the server is shutting down", code="service_unavailable")
            if time.monotonic() >= give_up:
                raise ValidationError(
                    f"query_image_url did not answer within {self._deadline_s:.0f} s",
                    code="asset_url_unreachable",
                    field="query_image_url",
                )
        if "error" in box:
            raise box["error"]
        data: bytes = box["data"]
        return data

    def _fetch(self, url: str) -> bytes:
        # httpx loads with the first image query, not with the API (its cold start never needs it).
        from mediaindex.net.download import download

        with tempfile.TemporaryDirectory(prefix="mi-query-") as tmp:
            dest = Path(tmp) / "image"
            try:
                download(
                    url,
                    dest,
                    max_bytes=MAX_QUERY_IMAGE_BYTES,
                    allow_private=self._allow_private,
                    timeout_s=self._timeout_s,
                    max_redirects=self._max_redirects,
                    resolver=self._resolver,
                    deadline_s=self._deadline_s,
                    connect_via=self._connect_via,
                )
            except FetchAborted as e:
                raise UnavailableError("the server is shutting down", code="service_unavailable") from e
            except (MediaError, ValidationError) as e:
                raise ValidationError(e.message, code=e.code, field="query_image_url") from e
            return dest.read_bytes()


def image_fetcher(
    *,
    allow_private: bool,
    timeout_s: float,
    max_redirects: int,
    deadline_s: float = 15.0,
    slots: int = 4,
) -> ImageFetcher:
    return ImageFetcher(
        allow_private=allow_private,
        timeout_s=timeout_s,
        max_redirects=max_redirects,
        deadline_s=deadline_s,
        slots=slots,
    )
