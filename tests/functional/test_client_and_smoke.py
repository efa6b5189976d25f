"""The CLI's client and `mediaindex aws smoke` against a real server over HTTP (the local runtime on
a free port, workers running): what a user's first commands do."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediaindex.api.background import serve_in_background
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.client import Client, _PartSigner
from mediaindex.services import uploads as upload_service
from mediaindex.settings import Settings
from mediaindex.smoke import run_smoke

MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Runtime, Client]]:
    port = free_port()
    settings = Settings(
        data_dir=tmp_path / "data",
        port=port,
        rate_limit_per_minute=0,
        multipart_threshold_bytes=5 * MiB,
        part_size_bytes=5 * MiB,
    )
    runtime = build_local(settings, start_workers=True)
    stop = serve_in_background(
        build_app(runtime, close_on_shutdown=False), "127.0.0.1", port, access_log=False
    )
    client = Client(settings.base_url, runtime.services.keys.create_key("acme")[2])
    yield runtime, client
    client.close()
    stop()
    runtime.close()


def test_the_client_signs_the_parts_the_answer_left_out(
    served: tuple[Runtime, Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server that hands out one part URL with the asset and signs one per call after that
    runtime, client = served
    monkeypatch.setattr(upload_service, "SIGNED_PARTS_PER_CALL", 1)
    monkeypatch.setattr(_PartSigner, "BATCH", 1)
    # When a 5-part file is uploaded with the CLI's client
    data = bytes(range(256)) * (4 * 5 * MiB // 256) + b"tail"
    path = tmp_path / "big.bin.mp4"
    path.write_bytes(data)
    index = client.index_by_name("uploads")
    asset = client.upload(index["id"], path)
    # Then every part landed: the stored original has the file's size and sha256
    tenant = runtime.services.keys.authenticate(client._http.headers["Authorization"][7:]).tenant_id
    stored = runtime.stores.assets.get(tenant, asset["id"])
    assert stored is not None and stored.upload is not None and stored.upload.completed
    info = runtime.blobs.head(stored.upload.key)
    assert info is not None and info.size == len(data)
    assert (
        hashlib.sha256(runtime.blobs.get_bytes(stored.upload.key)).hexdigest()
        == hashlib.sha256(data).hexdigest()
    )


@pytest.mark.slow
def test_smoke_passes_on_a_working_deployment_and_cleans_up(served: tuple[Runtime, Client]) -> None:
    # Given a working server (here the local runtime; on AWS the same calls reach the stack)
    _, client = served
    lines: list[str] = []
    # When the smoke command runs against it
    code = run_smoke(client, out=lines.append, timeout_s=300)
    # Then every check passed, the phrase was found at its second, and nothing was left behind
    assert code == 0, "\n".join(lines)
    names = [line.split()[1] for line in lines]
    assert names[:2] == ["health", "upload"] and any(line.startswith("ok   search") for line in lines), lines
    assert [i["name"] for i in client.request("GET", "/v1/indexes")["data"]] == []


def test_smoke_fails_loudly_when_the_pipeline_does_not_finish(
    served: tuple[Runtime, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment whose workers never pick anything up
    runtime, client = served
    assert runtime.executor is not None
    runtime.executor.pool.stop()
    lines: list[str] = []
    # When the smoke command runs with a short timeout
    code = run_smoke(client, out=lines.append, timeout_s=3)
    # Then it exits 1 naming the failed check, and still removes what it made
    assert code == 1
    assert any(line.startswith("FAIL pipeline ready") for line in lines), lines
    assert client.request("GET", "/v1/indexes")["data"] == []
