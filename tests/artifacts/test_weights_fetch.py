"""containers/models/fetch.py, the images' build stage for model weights: pinned commit, every file
checked against the commit's listing (LFS sha256, Git blob id) and models.json's own sha256. Driven
against a stand-in for the Hub's tree and resolve endpoints on 127.0.0.1."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.artifacts import envs

pytestmark = pytest.mark.artifacts

MODELS = envs.CONTAINERS / "models"
REVISION = "0123456789abcdef0123456789abcdef01234567"
CONFIG = b'{"model_type": "toy"}\n'
WEIGHTS = b"\x00\x01weights" * 1000


def load_fetch() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_weights", MODELS / "fetch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


class Hub:
    """Serves a repo's tree at REVISION and its files; `served` may differ from what the tree lists."""

    def __init__(self, listed: dict[str, bytes], served: dict[str, bytes] | None = None) -> None:
        self.listed, self.served = listed, served or dict(listed)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == f"/api/models/org/toy/tree/{REVISION}":
                    body = json.dumps([hub.entry(name, data) for name, data in hub.listed.items()]).encode()
                elif m := re.fullmatch(rf"/org/toy/resolve/{REVISION}/(.+)", self.path):
                    if m.group(1) not in hub.served:
                        self.send_error(404)
                        return
                    body = hub.served[m.group(1)]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def entry(name: str, data: bytes) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "path": name, "size": len(data)}
        if name.endswith((".bin", ".safetensors")):  # Git LFS: a pointer's id, and the object's sha256
            entry["oid"] = blob_id(b"version https://git-lfs.github.com/spec/v1\n")
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
        else:
            entry["oid"] = blob_id(data)
        return entry

    def __enter__(self) -> Hub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def manifest(tmp_path: Path, **model: Any) -> Path:
    toy = {
        "repo": "org/toy",
        "revision": REVISION,
        "files": ["config.json"],
        "one_of": ["model.safetensors", "pytorch_model.bin"],
        "sha256": {"model.safetensors": hashlib.sha256(WEIGHTS).hexdigest()},
        **model,
    }
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"toy": toy}))
    return path


@pytest.fixture
def fetch() -> ModuleType:
    return load_fetch()


@pytest.fixture
def hub() -> Iterator[Hub]:
    with Hub({"config.json": CONFIG, "model.safetensors": WEIGHTS, "README.md": b"# toy\n"}) as h:
        yield h


def run(fetch: ModuleType, hub: Hub, models: Path, dest: Path) -> int:
    code: int = fetch.main(["toy", str(dest), "--base-url", hub.url, "--manifest", str(models)])
    return code


def test_a_pinned_model_lands_verified(fetch: ModuleType, hub: Hub, tmp_path: Path) -> None:
    dest = tmp_path / "models" / "toy"
    assert run(fetch, hub, manifest(tmp_path), dest) == 0
    # The listed files, and only those, with what was checked
    assert sorted(p.name for p in dest.iterdir()) == ["MANIFEST.json", "config.json", "model.safetensors"]
    assert (dest / "model.safetensors").read_bytes() == WEIGHTS
    record = json.loads((dest / "MANIFEST.json").read_text())
    assert record["revision"] == REVISION
    assert {f["path"]: f["sha256"] for f in record["files"]}["model.safetensors"] == hashlib.sha256(
        WEIGHTS
    ).hexdigest()


@pytest.mark.parametrize(
    "served",
    [
        {"config.json": CONFIG, "model.safetensors": WEIGHTS + b"x"},  # LFS object not the commit's
        {"config.json": CONFIG.replace(b"toy", b"evil"), "model.safetensors": WEIGHTS},  # small file
    ],
    ids=["weights", "config"],
)
def test_a_file_unlike_the_commit_fails_the_build_and_leaves_nothing(
    fetch: ModuleType, tmp_path: Path, served: dict[str, bytes]
) -> None:
    dest = tmp_path / "models" / "toy"
    with Hub({"config.json": CONFIG, "model.safetensors": WEIGHTS}, served) as hub:
        assert run(fetch, hub, manifest(tmp_path), dest) == 1
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_a_checksum_recorded_in_models_json_must_match_too(
    fetch: ModuleType, hub: Hub, tmp_path: Path
) -> None:
    models = manifest(tmp_path, sha256={"model.safetensors": "0" * 64})
    assert run(fetch, hub, models, tmp_path / "toy") == 1


@pytest.mark.parametrize("revision", ["main", "refs/pr/15", "0123abc"])
def test_only_a_full_commit_is_a_revision(fetch: ModuleType, hub: Hub, tmp_path: Path, revision: str) -> None:
    assert run(fetch, hub, manifest(tmp_path, revision=revision), tmp_path / "toy") == 1


def test_a_missing_file_fails(fetch: ModuleType, hub: Hub, tmp_path: Path) -> None:
    assert run(fetch, hub, manifest(tmp_path, files=["config.json", "tokenizer.json"]), tmp_path / "toy") == 1


def test_the_images_models_are_pinned() -> None:
    models = json.loads((MODELS / "models.json").read_text())
    # Every model an image's build stage fetches is in models.json, pinned to a commit
    fetched = {
        name
        for image in ("ml", "encoder")
        for name in re.findall(r"fetch\.py ([\w.-]+) ", (envs.CONTAINERS / image / "Dockerfile").read_text())
    }
    assert fetched == set(models)
    for name, model in models.items():
        assert re.fullmatch(r"[0-9a-f]{40}", model["revision"]), name
    # The Whisper weights' sha256 is recorded here as well as checked against the commit
    assert re.fullmatch(r"[0-9a-f]{64}", models["whisper-large-v3-turbo"]["sha256"]["model.bin"])
