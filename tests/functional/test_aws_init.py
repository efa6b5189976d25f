"""`mediaindex aws init`: the table and the bucket the aws runtime needs, made idempotently."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from mediaindex.adapters.aws.dynamo.schema import TTL_ATTRIBUTE
from mediaindex.cli import main

pytestmark = pytest.mark.aws


def test_aws_init_creates_table_and_bucket_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MEDIAINDEX_AWS_REGION": "eu-west-1",
        "MEDIAINDEX_CORS_ORIGINS": '["http://localhost:8000"]',
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        # When it runs twice
        assert main(["aws", "init", "--table", "mi-table", "--bucket", "mi-media"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert main(["aws", "init", "--table", "mi-table", "--bucket", "mi-media"]) == 0
        second = json.loads(capsys.readouterr().out)
        # Then the first made both and the second found them
        assert (first["table"]["created"], first["bucket"]["created"]) == (True, True)
        assert (second["table"]["created"], second["bucket"]["created"]) == (False, False)
        ddb = boto3.client("dynamodb", region_name="eu-west-1")
        table = ddb.describe_table(TableName="mi-table")["Table"]
        assert {g["IndexName"] for g in table["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2"}
        ttl = ddb.describe_time_to_live(TableName="mi-table")["TimeToLiveDescription"]
        assert ttl["AttributeName"] == TTL_ATTRIBUTE
        s3 = boto3.client("s3", region_name="eu-west-1")
        [rule] = s3.get_bucket_cors(Bucket="mi-media")["CORSRules"]
        assert rule["AllowedOrigins"] == ["http://localhost:8000"]
        assert "PUT" in rule["AllowedMethods"] and rule["ExposeHeaders"] == ["ETag"]
        assert s3.get_bucket_location(Bucket="mi-media")["LocationConstraint"] == "eu-west-1"
