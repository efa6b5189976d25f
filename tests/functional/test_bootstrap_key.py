"""The deployment's first API key: generated into Secrets Manager by the stack, made to work by
the API on its cold start, never stored in the clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.aws import ensure_bootstrap_key
from mediaindex.services.keys import hash_key
from tests.apiclient import Api
from tests.aws_runtime import build_aws_test_services, shared_clients

pytestmark = pytest.mark.aws
RAW = "Zq8vN3xW5mK2pL9sT4yB7cD1fG6hJ0aE3rU8iO5pQ2wX7zV4"  # what CloudFormation would generate


def test_the_bootstrap_secret_becomes_a_working_key_once(tmp_path: Path) -> None:
    runtime = build_aws_test_services(tmp_path)
    try:
        secrets = shared_clients().get("secretsmanager")
        arn = secrets.create_secret(Name="mediaindex/bootstrap", SecretString=RAW)["ARN"]
        ensure_bootstrap_key(runtime.services.keys, runtime.settings, secrets, arn)
        ensure_bootstrap_key(
            runtime.services.keys, runtime.settings, secrets, arn
        )  # a second cold start changes nothing
        key = runtime.stores.keys.get_key_by_hash(hash_key(RAW))
        assert key is not None
        with TestClient(build_app(runtime), base_url="http://127.0.0.1:8000") as client:
            api = Api(client, RAW)
            api.index("first")
            assert [i["name"] for i in api.ok("GET", "/v1/indexes")["data"]] == ["first"]
            # (Checked inside the block: leaving it shuts the app, and with it the moto backends, down.)
            tenant = runtime.stores.keys.get_tenant_by_name("default")
            assert tenant is not None and key.tenant_id == tenant.id
    finally:
        runtime.close()


def test_an_unreadable_secret_does_not_stop_the_api(tmp_path: Path) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mediaindex/none-AbCdEf"
    runtime = build_aws_test_services(tmp_path, bootstrap_key_secret_arn=missing)
    try:
        with TestClient(build_app(runtime), base_url="http://127.0.0.1:8000") as client:
            assert client.get("/v1/health").status_code == 200
            assert runtime.stores.keys.get_tenant_by_name("default") is None
    finally:
        runtime.close()
