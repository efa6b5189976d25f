"""The API suite runs once per runtime: `local` (SQLite, files, the worker pool) and `aws`
(DynamoDB and S3 under moto). A test that needs the pipeline to run asks for `run_pipeline`,
which only the local runtime provides in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mediaindex.api.app import create_app
from mediaindex.container import Services
from mediaindex.runtime import build_local
from mediaindex.settings import Settings
from tests.apiclient import Api

BASE_URL = "http://127.0.0.1:8000"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    fields: dict[str, object] = {"start_workers": False, "rate_limit_per_minute": 0, "job_retry_backoff_s": 0}
    return Settings(data_dir=data_dir, **{**fields, **overrides})  # type: ignore[arg-type]


@pytest.fixture(params=["local", pytest.param("aws", marks=pytest.mark.aws)])
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def services(runtime: str, data_dir: Path) -> Iterator[Services]:
    if runtime == "local":
        svc = build_local(make_settings(data_dir))
    else:
        aws = pytest.importorskip("tests.aws_runtime", reason="the AWS test runtime is not built yet")
        svc = aws.build_aws_test_services(data_dir)
    yield svc
    svc.close()


@pytest.fixture
def local_services(data_dir: Path) -> Iterator[Services]:
    svc = build_local(make_settings(data_dir))
    yield svc
    svc.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url=BASE_URL, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def api(client: TestClient, services: Services) -> Api:
    return Api(client, services.keys.create_key("acme")[2])


@pytest.fixture
def other_api(client: TestClient, services: Services) -> Api:
    return Api(client, services.keys.create_key("globex")[2])


@pytest.fixture
def run_pipeline(services: Services, runtime: str) -> Callable[[], int]:
    if runtime != "local":
        pytest.skip("the pipeline runs in-process on the local runtime only; AWS runs it in Step Functions")
    pool = services.extras["worker_pool"]
    return lambda: int(pool.run_until_idle())
