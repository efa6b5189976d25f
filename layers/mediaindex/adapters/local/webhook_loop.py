"""The local delivery loop: the delivery rows are the queue (SQLite), so scheduling is only a
wake-up; a daemon thread attempts what is due on a wake-up or every `poll_interval_s`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mediaindex.domain.webhooks import Delivery
from mediaindex.ports.webhooks import DeliveryQueue

log = logging.getLogger(__name__)


class WakeupQueue(DeliveryQueue):
    def __init__(self) -> None:
        self.wakeup = threading.Event()

    def schedule(self, delivery: Delivery) -> None:
        self.wakeup.set()


class DeliveryLoop:
    def __init__(self, run_due: Callable[[], int], queue: WakeupQueue, *, poll_interval_s: float) -> None:
        self._run_due = run_due
        self._wakeup = queue.wakeup
        self._interval = poll_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mi-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wakeup.wait(self._interval)
            self._wakeup.clear()
            if self._stop.is_set():
                return
            try:
                while self._run_due() and not self._stop.is_set():
                    pass  # a full batch may leave more due
            except Exception:
                log.exception("webhook delivery loop failed")
