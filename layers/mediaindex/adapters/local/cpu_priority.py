"""Background work below the API's CPU priority, on one machine.

The local runtime indexes in the process that answers requests: its workers' ffmpeg and Whisper
fill every core, and a search then waits its turn with them. On Linux a thread's nice value is
its own (setpriority on its thread id), and what that thread starts inherits it: ffmpeg children,
CTranslate2's and torch's worker threads. So each background thread lowers itself once, when it
starts, and the request threads keep the server's priority. Measured by bench/search_under_ingest.py
on 2 cores, searches made while a 60 s 720p clip was indexed: p50 139 ms, p90 532 ms at one
priority; 20 ms and 28 ms with the workers 10 below (10.7 ms quiet), the clip ready as fast.
Background steps keep their order among themselves; only the API goes first.

Elsewhere (macOS, Windows), or where the sandbox forbids it, nothing changes."""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)
MAX_NICE = 19


def lower_this_thread(by: int) -> int | None:
    """Raises the calling thread's nice value by `by` (capped at 19); its new value, or None where
    nothing changed (`by` <= 0, not Linux, or not permitted). It cannot be undone without privileges:
    call it only on a thread that does background work for the rest of its life."""
    if by <= 0 or sys.platform != "linux":
        return None
    tid = threading.get_native_id()
    try:
        nice = min(MAX_NICE, os.getpriority(os.PRIO_PROCESS, tid) + by)
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as e:
        log.info("background work keeps the server's CPU priority", extra={"reason": str(e)})
        return None
    return nice
