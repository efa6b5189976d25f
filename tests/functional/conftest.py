"""The API suite runs once per runtime: `local` (SQLite, files, the worker pool) and `aws`
(DynamoDB and S3 under moto). A test that needs the pipeline to run asks for `run_pipeline`,
which only the local runtime provides in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.settings import Settings
from tests.apiclient import Api

BASE_URL = "http://127.0.0.1:8000"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    fields: dict[str, object] = {"start_workers": False, "rate_limit_per_minute": 0, "job_retry_backoff_s": 0}
    return Settings(data_dir=data_dir, **{**fields, **overrides})  # type: ignore[arg-type]


@pytest.fixture(params=["local", pytest.param("aws", marks=pytest.mark.aws)])
def runtime_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime(runtime_kind: str, data_dir: Path) -> Iterator[Runtime]:
    if runtime_kind == "local":
        runtime = build_local(make_settings(data_dir))
    else:
        aws = pytest.importorskip("tests.aws_runtime", reason="the AWS test runtime is not built yet")
        runtime = aws.build_aws_test_services(data_dir)
    yield runtime
    runtime.close()


@pytest.fixture
def local_services(data_dir: Path) -> Iterator[Runtime]:
    runtime = build_local(make_settings(data_dir))
    yield runtime
    runtime.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def api(client: TestClient, runtime: Runtime) -> Api:
    return Api(client, runtime.services.keys.create_key("acme")[2])


@pytest.fixture
def other_api(client: TestClient, runtime: Runtime) -> Api:
    return Api(client, runtime.services.keys.create_key("globex")[2])


@pytest.fixture
def run_pipeline(runtime: Runtime, runtime_kind: str) -> Callable[[], int]:
    if runtime_kind != "local":
        pytest.skip("the pipeline runs in-process on the local runtime only; AWS runs it in Step Functions")
    pool = runtime.executor.pool
    return lambda: int(pool.run_until_idle())


@pytest.fixture
def here(tmp_path: Path) -> Path:
    """The user's working folder for a CLI run: no data dir, no server."""
    work = tmp_path / "work"
    work.mkdir()
    return work
