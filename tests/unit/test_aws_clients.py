"""boto3 clients: the standard endpoint variables are honoured and every client shares one Config.
Making a client sends no request, so no AWS (and no moto) is needed."""

from __future__ import annotations

import boto3
import pytest

from mediaindex.adapters.aws.clients import AwsClients, configured_endpoint, make_client

SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")


@pytest.fixture(autouse=True)
def no_endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_aws_endpoint_url_reaches_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    client = make_client("dynamodb", session=SESSION)
    assert client.meta.endpoint_url == "http://127.0.0.1:5000"
    assert configured_endpoint("dynamodb") == "http://127.0.0.1:5000"


def test_a_service_specific_endpoint_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    s3 = make_client("s3", session=SESSION)
    assert s3.meta.endpoint_url == "http://127.0.0.1:9000"
    # A custom endpoint has no wildcard DNS for bucket hosts: path-style URLs
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "b", "Key": "originals/k"}, ExpiresIn=60)
    assert url.startswith("http://127.0.0.1:9000/b/originals/k?")


def test_without_an_endpoint_clients_reach_aws_with_the_shared_config() -> None:
    s3 = make_client("s3", region="eu-west-1", session=SESSION)
    assert s3.meta.endpoint_url == "https://s3.eu-west-1.amazonaws.com"
    config = s3.meta.config
    assert config.retries["mode"] == "standard"
    assert (config.connect_timeout, config.read_timeout) == (5, 20)
    assert config.signature_version == "s3v4"
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "media-bucket", "Key": "k"}, ExpiresIn=60)
    assert url.startswith("https://media-bucket.s3.eu-west-1.amazonaws.com/k?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert "checksum" not in url.lower()  # browsers cannot compute a signed CRC


def test_clients_are_made_on_first_use_only() -> None:
    clients = AwsClients(region="eu-west-1", session=SESSION)
    lazy = clients.lazy("stepfunctions")
    assert clients.made == {}
    assert lazy.meta.service_model.service_name == "stepfunctions"
    assert set(clients.made) == {"stepfunctions"}
    assert clients.stepfunctions is clients.stepfunctions
