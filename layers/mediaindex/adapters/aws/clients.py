"""AWS clients for the adapters, built in one place with one botocore Config.

Clients are made by the caller at start (a Lambda's first invoke, a container's main, a test
session), never at import. The endpoint comes from botocore's own configuration: `AWS_ENDPOINT_URL`
and `AWS_ENDPOINT_URL_<SERVICE>`, so a moto server or LocalStack needs no code path of its own; an
explicit `endpoint_url` argument wins over both.

Without a boto3 Session from the caller, clients come from one botocore session: boto3 adds
nothing to them but its S3 transfer methods (`upload_file`, `download_file`, which the S3 blob
store calls), and importing it, s3transfer and their imports was ~15 ms of every API cold start.
So only an S3 client is made through boto3, over the same botocore session, on first use. That
session's loader checks a service's name by its own folder (`NameCheckingLoader`) and reads its
JSON files into plain dicts (`DictJSONFileLoader`).
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from botocore.config import Config
from botocore.loaders import JSONFileLoader, Loader
from botocore.session import Session as CoreSession

from mediaindex import __version__

if TYPE_CHECKING:
    import boto3

# Clients whose methods boto3 extends, and the adapters call: made through boto3.
BOTO3_SERVICES = frozenset({"s3"})

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


class ServiceNames(Sequence[str]):
    """The services a loader has one type of model for (`service-2`, `endpoint-rule-set-1`), as
    botocore's check before loading a model uses them: `name in` looks in that service's own folder
    on each search path; anything else (the list in botocore's unknown-service error) lists them all."""

    def __init__(self, loader: Loader, type_name: str, list_all: Callable[[str], list[str]]) -> None:
        self._loader = loader
        self._type_name = type_name
        self._list_all = list_all

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or name in ("", ".", "..") or os.path.basename(name) != name:
            return False
        for root in self._loader.search_paths:
            folder = os.path.join(root, name)
            if os.path.isdir(folder) and any(
                self._loader.file_loader.exists(os.path.join(folder, version, self._type_name))
                for version in os.listdir(folder)
            ):
                return True
        return False

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._list_all(self._type_name)[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._list_all(self._type_name))

    def __len__(self) -> int:
        return len(self._list_all(self._type_name))


class DictJSONFileLoader(JSONFileLoader):
    """botocore's JSON file loader, parsing into plain dicts where it asks for OrderedDicts (dicts
    keep the files' order too): three times faster on endpoints.json, the 1.2 MB file every
    session's first client reads (~8 ms of a cold start)."""

    OPENERS: tuple[tuple[str, Callable[..., Any]], ...] = ((".json", open), (".json.gz", gzip.open))

    def load_file(self, file_path: str) -> Any:
        for ext, opener in self.OPENERS:  # botocore's order: a plain file before a gzipped one
            if os.path.isfile(file_path + ext):
                with opener(file_path + ext, "rb") as fp:
                    return json.loads(fp.read().decode("utf-8"))
        return None


class NameCheckingLoader(Loader):
    """botocore's loader, but for two costs: before it loads a service's model it lists every
    service it ships to check the name (~400 folders, ~5 ms a model type, two types for a
    session's first client); here the name is checked in its own folder (`ServiceNames`). And its
    files are parsed into plain dicts (`DictJSONFileLoader`)."""

    FILE_LOADER_CLASS = DictJSONFileLoader

    def list_available_services(self, type_name: str) -> ServiceNames:  # type: ignore[override]
        return ServiceNames(self, type_name, super().list_available_services)


def core_session() -> CoreSession:
    """A botocore session with a `NameCheckingLoader` over the same search paths as its own
    (botocore's models, then `AWS_DATA_PATH`)."""
    session = CoreSession()
    data_path = session.get_config_variable("data_path")
    extra = None
    if data_path is not None:
        extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    session.register_component("data_loader", NameCheckingLoader(extra_search_paths=extra))
    return session


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
    session: boto3.Session | CoreSession | None = None,
    config: Config | None = None,
) -> Any:
    """A client of `service` with the shared Config (merged with `config` when given), from
    `session` (a boto3 or a botocore session; a new botocore one by default). S3 signs with SigV4
    (presigned URLs must work in every region) and uses path-style addressing against a custom
    endpoint (moto, LocalStack have no wildcard DNS for virtual-hosted buckets)."""
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
    if session is None:
        session = core_session()
    if isinstance(session, CoreSession):
        if service not in BOTO3_SERVICES:
            return session.create_client(service, **kwargs)
        import boto3

        session = boto3.Session(botocore_session=session)
    return session.client(service, **kwargs)  # type: ignore[call-overload]


@dataclass
class AwsClients:
    """The clients the AWS runtime uses, each made on first use: a Lambda that never starts an
    execution never pays for a Step Functions client (a session's first client costs ~40 ms at
    cold start, each next one 5-10 ms).
    Pass ready-made clients to share them (tests create them once per session), or a boto3
    `session` to make them from (its credentials, its region)."""

    region: str | None = None
    endpoint_url: str | None = None
    session: boto3.Session | CoreSession | None = None
    made: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, service: str) -> Any:
        with self._lock:
            client = self.made.get(service)
            if client is None:
                if self.session is None:
                    # One session: its loader caches the service models all clients share.
                    self.session = core_session()
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
