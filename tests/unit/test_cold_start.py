"""The API Lambda's cold start, each in a fresh interpreter as a new sandbox would be: what it
imports, the garbage collector during the build, the clients it makes, and the bench's one JSON
line. Building the app sends no request (dummy credentials), so no AWS is needed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader

from bench.cold_start import FORBIDDEN, lambda_env
from mediaindex.adapters.aws.clients import NameCheckingLoader, core_session, make_client
from tests.bench_line import bench_record

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env, cwd=ROOT / "functions" / "api", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_api_lambda_builds_without_collecting_and_without_heavy_modules(tmp_path: Path) -> None:
    result = _run(
        """
        import gc, json, sys
        import handler
        from mediaindex.api.lazy_routes import LazyRoute
        disabled_at_import = not gc.isenabled()
        passes = []
        gc.callbacks.append(lambda phase, info: phase == "start" and passes.append(info["generation"]))
        handler.configure()
        building = list(passes)
        answer = handler.handler(
            {"version": "2.0", "routeKey": "$default", "rawPath": "/v1/health", "rawQueryString": "",
             "headers": {"host": "x"}, "requestContext": {"http": {"method": "GET", "path": "/v1/health",
             "sourceIp": "1.2.3.4"}, "requestId": "rid-1", "stage": "$default"}, "isBase64Encoded": False},
            type("Context", (), {"function_name": "mediaindex-api", "memory_limit_in_mb": 512,
                                 "invoked_function_arn": "arn:aws:lambda:us-east-1:1:function:f",
                                 "aws_request_id": "req-1"})(),
        )
        print(json.dumps({"disabled_at_import": disabled_at_import, "passes_while_building": building,
                          "enabled_after": gc.isenabled(), "frozen": gc.get_freeze_count(),
                          "status": answer["statusCode"], "request_id": answer["headers"].get("x-request-id"),
                          "routes": {r.name: r.built for r in handler._asgi_handler.app.routes
                                     if isinstance(r, LazyRoute)},
                          "modules": sorted(m for m in ("boto3", "s3transfer", "torch", "aws_cdk",
                                                        "faster_whisper", "httpx", "numpy", "opensearchpy")
                                            if m in sys.modules)}))
        """,
        lambda_env(tmp_path),
    )
    assert result["disabled_at_import"] and result["passes_while_building"] == []
    assert result["enabled_after"] and result["frozen"] > 0  # on again, the app's objects frozen out
    assert result["status"] == 200 and result["request_id"] == "rid-1"
    # Each route is built on its first request: the health check built its own, and no other.
    assert len(result["routes"]) > 40
    assert [name for name, built in result["routes"].items() if built] == ["health"]
    # boto3 (and s3transfer) come only with the first S3 client; the rest never.
    assert result["modules"] == []


def test_clients_share_one_botocore_session_and_s3_keeps_its_transfer_methods(tmp_path: Path) -> None:
    result = _run(
        """
        import json, sys
        from mediaindex.adapters.aws.clients import AwsClients
        clients = AwsClients(region="eu-west-1")
        dynamodb = clients.get("dynamodb")
        boto3_before_s3 = "boto3" in sys.modules
        s3 = clients.get("s3")
        print(json.dumps({
            "boto3_before_s3": boto3_before_s3,
            "dynamodb_endpoint": dynamodb.meta.endpoint_url,
            "s3_endpoint": s3.meta.endpoint_url,
            "s3_transfer": all(hasattr(s3, m) for m in ("upload_file", "download_file")),
            "dynamodb_retries": dynamodb.meta.config.retries["mode"],
            "same_session": clients.get("dynamodb") is dynamodb,
            "url": s3.generate_presigned_url(
                "put_object", Params={"Bucket": "media-bucket", "Key": "k"}, ExpiresIn=60
            ),
        }))
        """,
        lambda_env(tmp_path),
    )
    assert result["boto3_before_s3"] is False
    assert result["dynamodb_endpoint"] == "https://dynamodb.eu-west-1.amazonaws.com"
    assert result["s3_endpoint"] == "https://s3.eu-west-1.amazonaws.com"
    assert result["s3_transfer"] and result["dynamodb_retries"] == "standard" and result["same_session"]
    assert result["url"].startswith("https://media-bucket.s3.eu-west-1.amazonaws.com/k?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in result["url"]


def test_a_known_service_is_loaded_without_listing_them_all(monkeypatch: pytest.MonkeyPatch) -> None:
    listed: list[str] = []
    full = Loader.list_available_services

    def counted(self: Loader, type_name: str) -> list[str]:
        listed.append(type_name)
        return full(self, type_name)

    monkeypatch.setattr(Loader, "list_available_services", counted)
    session = core_session()
    assert isinstance(session.get_component("data_loader"), NameCheckingLoader)
    client = make_client("dynamodb", region="eu-west-1", session=session)
    assert client.meta.service_model.service_name == "dynamodb"
    assert "PutItem" in client.meta.service_model.operation_names
    assert listed == []
    # What lists them all still does: botocore's own listing, and its error for an unknown name.
    assert "stepfunctions" in session.get_available_services()
    assert len(session.get_available_services()) == len(full(Loader(), "service-2"))
    for name in ("dynamodbx", "../dynamodb", ""):
        with pytest.raises(UnknownServiceError, match=r"Valid service names are: .*dynamodb"):
            make_client(name, region="eu-west-1", session=session)


def test_the_loader_honours_aws_data_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A model of one's own (AWS_DATA_PATH), as botocore's loader finds it: by its folder.
    folder = tmp_path / "mediaindex-test" / "2024-01-01"
    folder.mkdir(parents=True)
    model = {
        "version": "2.0",
        "metadata": {
            "apiVersion": "2024-01-01",
            "endpointPrefix": "mediaindex-test",
            "protocol": "json",
            "serviceId": "Mediaindex Test",
            "signatureVersion": "v4",
            "jsonVersion": "1.0",
            "targetPrefix": "MediaindexTest",
            "uid": "mediaindex-test-2024-01-01",
        },
        "operations": {},
        "shapes": {},
    }
    (folder / "service-2.json").write_text(json.dumps(model))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    loader = core_session().get_component("data_loader")
    assert str(tmp_path) in loader.search_paths
    loaded = loader.load_service_model("mediaindex-test", "service-2")
    assert loaded["metadata"]["uid"] == "mediaindex-test-2024-01-01"
    assert "mediaindex-test" in loader.list_available_services("service-2")
    assert "mediaindex-test" not in loader.list_available_services("paginators-1")


def test_the_cold_start_bench_prints_one_json_line() -> None:
    record, table = bench_record("cold_start", "--runs", "1", "--no-layer")
    assert record["bench"] == "cold_start"
    assert record["ratio"] == round(record["project_ms"] / record["floor_ms"], 2)
    own = record["handler_own_ms"]
    assert own == round(record["project_ms"] - record["floor_ms"], 1)
    assert record["goals"] == {"handler_own_le_200_ms": own <= 200, "no_forbidden_modules": True}
    assert not set(FORBIDDEN) & set(record["imported_watched_modules"])
    phases = {"handler_module", "app_modules", "build_runtime", "create_app", "first_request"}
    assert set(record["phases_ms"]) == phases
    assert len(record["load_start"]) == len(record["load_end"]) == 3
    assert "handler's own share" in table
