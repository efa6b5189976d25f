"""boto3 clients for the AWS adapters, built in one place with one botocore Config.

Clients are made by the caller at start (a Lambda's first invoke, a container's main, a test
session), never at import. The endpoint comes from boto3's own configuration: `AWS_ENDPOINT_URL`
and `AWS_ENDPOINT_URL_<SERVICE>` (boto3 >= 1.28 reads them itself), so a moto server or LocalStack
needs no code path of its own; an explicit `endpoint_url` argument wins over both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from mediaindex import __version__

# Standard retry mode: exponential backoff with jitter, and a client-side retry quota so a
# struggling service is not hammered. Timeouts stay below API Gateway's 29 s integration limit.
BASE_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=20,
    tcp_keepalive=True,
    max_pool_connections=20,
    user_agent_extra=f"mediaindex/{__version__}",
    # CRC checksums on every request (boto3 >= 1.36) are refused by some S3-compatible endpoints
    # and would be signed into presigned PUTs, which browsers cannot compute.
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)


def configured_endpoint(service: str) -> str | None:
    """The endpoint boto3 will use for `service` from the environment, if any (AWS's naming:
    `AWS_ENDPOINT_URL_<SERVICE ID>` with spaces and dashes as underscores, then `AWS_ENDPOINT_URL`)."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    specific = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_").replace(" ", "_")
    return os.environ.get(specific) or os.environ.get("AWS_ENDPOINT_URL") or None


def make_client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    config: Config | None = None,
) -> Any:
    """A boto3 client of `service` with the shared Config (merged with `config` when given). S3 signs
    with SigV4 (presigned URLs must work in every region) and uses path-style addressing against a
    custom endpoint (moto, LocalStack have no wildcard DNS for virtual-hosted buckets)."""
    merged = BASE_CONFIG
    if service == "s3":
        custom = endpoint_url or configured_endpoint("s3")
        merged = merged.merge(
            Config(signature_version="s3v4", s3={"addressing_style": "path" if custom else "virtual"})
        )
    if config is not None:
        merged = merged.merge(config)
    kwargs: dict[str, Any] = {"config": merged}
    if region:
        kwargs["region_name"] = region
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return (session or boto3.Session()).client(service, **kwargs)  # type: ignore[call-overload]


@dataclass
class AwsClients:
    """The clients the AWS runtime uses, each made on first use: a Lambda that never starts an
    execution never pays for a Step Functions client (each costs ~100 ms at cold start).
    Pass ready-made clients to share them (tests create them once per session)."""

    region: str | None = None
    endpoint_url: str | None = None
    session: boto3.Session | None = None
    made: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, service: str) -> Any:
        with self._lock:
            client = self.made.get(service)
            if client is None:
                if self.session is None:
                    # One session: its loader caches the service models all clients share.
                    self.session = boto3.Session(region_name=self.region)
                client = make_client(
                    service, region=self.region, endpoint_url=self.endpoint_url, session=self.session
                )
                self.made[service] = client
            return client

    def lazy(self, service: str) -> Any:
        """A stand-in that makes the client on its first use (for adapters a handler may never call)."""
        return LazyClient(lambda: self.get(service), service)

    @property
    def dynamodb(self) -> Any:
        return self.get("dynamodb")

    @property
    def s3(self) -> Any:
        return self.get("s3")

    @property
    def stepfunctions(self) -> Any:
        return self.get("stepfunctions")


class LazyClient:
    """Stands in for a client that is made on first attribute access (once, thread-safe): keeps
    cold starts free of clients, and their imports, that a request may never use."""

    def __init__(self, factory: Callable[[], Any], name: str = "client") -> None:
        self._factory = factory
        self._name = name
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, attr: str) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return getattr(client, attr)

    def __repr__(self) -> str:
        return f"<lazy {self._name}>"
