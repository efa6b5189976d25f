"""How `serve --runtime aws` learns that an original landed when no state machine is deployed (moto,
LocalStack, a dev account without the stack): EventBridge delivers nothing there, so `mediaindex aws
init` points the bucket's S3 notifications at an SQS queue and this watcher long-polls it, handing
each "ObjectCreated" record to the handler it is given: the composition root passes the same code the
upload-event Lambda runs (services.upload_events).

A message is deleted once all its records are handled (a dropped key counts as handled). One that
fails on the way to the stores stays in the queue and comes back after its visibility timeout; the
ingest is started once however often a notification arrives, so a redelivery is harmless."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mediaindex.domain.errors import UnavailableError

log = logging.getLogger(__name__)

_MISSING = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class ObjectCreatedHandler(Protocol):
    """Handles one S3 object-created record; returns its outcome (see services.upload_events)."""

    def __call__(
        self, *, bucket: str | None, key: str, size: int | str | None, etag: str | None
    ) -> dict[str, Any]: ...


def find_upload_queue(sqs: Any, queue_name: str) -> str | None:
    """The queue's URL, or None when there is no such queue (`aws init` was not run)."""
    try:
        return str(sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])
    except ClientError as e:
        if str(e.response.get("Error", {}).get("Code", "")) in _MISSING:
            return None
        raise UnavailableError(f"could not look up queue {queue_name}: {e}") from e
    except BotoCoreError as e:
        raise UnavailableError(f"could not look up queue {queue_name}: {e}") from e


def object_created_records(body: str) -> list[dict[str, Any]] | None:
    """The "ObjectCreated" records of an S3 notification message; [] for S3's test event (sent when
    the notification is set) and other events; None for a body that is no S3 notification."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        return None
    return [
        r
        for r in records
        if isinstance(r, dict)
        and r.get("eventSource") == "aws:s3"
        and str(r.get("eventName", "")).startswith("ObjectCreated:")
    ]


class UploadQueueWatcher:
    """Long-polls the upload queue on a daemon thread (`start`/`stop`), or one receive at a time
    (`poll_once`, for tests). `wait_s` bounds how long `stop` waits for the poll in flight."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: ObjectCreatedHandler,
        *,
        wait_s: int = 2,
        retry_s: float = 5.0,
    ) -> None:
        self.queue_url = queue_url
        self._sqs = sqs
        self._handler = handler
        self._wait_s = wait_s
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mi-upload-queue", daemon=True)
        self._thread.start()
        log.info("watching the upload queue", extra={"queue_url": self.queue_url})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # A receive cannot be interrupted: wait out the long poll (plus a margin for handling).
            self._thread.join(timeout=self._wait_s + 5)
            self._thread = None

    def poll_once(self) -> list[dict[str, Any]]:
        """Receives one batch (waiting up to wait_s for it), handles it, and returns the outcomes of
        its records (see services.upload_events.object_created)."""
        try:
            resp = self._sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self._wait_s
            )
        except (ClientError, BotoCoreError) as e:
            raise UnavailableError(f"could not receive from the upload queue: {e}") from e
        outcomes: list[dict[str, Any]] = []
        for message in resp.get("Messages", []):
            try:
                outcomes.extend(self._handle(message))
            except Exception:
                # Left in the queue: it comes back after the visibility timeout.
                log.exception("upload notification failed; it will be redelivered")
                continue
            self._delete(message)
        return outcomes

    def _handle(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        records = object_created_records(str(message.get("Body", "")))
        if records is None:
            log.warning(
                "message that is no S3 notification dropped", extra={"message_id": message.get("MessageId")}
            )
            return []
        outcomes = []
        for record in records:
            s3 = record.get("s3") or {}
            obj = s3.get("object") or {}
            outcomes.append(
                self._handler(
                    bucket=(s3.get("bucket") or {}).get("name"),
                    key=str(obj.get("key", "")),
                    size=obj.get("size"),
                    etag=obj.get("eTag"),
                )
            )
        return outcomes

    def _delete(self, message: dict[str, Any]) -> None:
        try:
            self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        except (ClientError, BotoCoreError):
            # Handled already; a redelivery finds the asset past awaiting_upload and starts nothing.
            log.warning("could not delete a handled upload notification", exc_info=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except UnavailableError:
                log.warning("upload queue unreachable; retrying", exc_info=True)
                self._stop.wait(self._retry_s)
            except Exception:  # the thread must outlive a surprise, or uploads go unnoticed again
                log.exception("upload queue watcher failed; retrying")
                self._stop.wait(self._retry_s)
