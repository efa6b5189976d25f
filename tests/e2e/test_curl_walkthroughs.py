"""The curl a user copies, run with real curl against a live local server on a generated clip:

- Aspect's own examples (tests/fixtures/aspect_curl/aspect_indexing.sh, copied verbatim from its
  indexing guide), with only the placeholders filled in: index create with the trailing slash, a
  multipart upload with repeated features, tasks, active tasks, asset reads and the download;
- the README's "Try the API with curl" block, exactly as written, twice on the same server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen
from tests.reliability.conftest import LiveServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "fixtures" / "aspect_curl" / "aspect_indexing.sh"
README = ROOT / "README.md"
SENTENCE = "The quick brown fox jumps over the lazy dog beside the quiet river."
RUN_TIMEOUT_S = 420

if shutil.which("curl") is None:
    pytest.skip("curl is missing", allow_module_level=True)
if not mediagen.have_tools():
    pytest.skip("ffmpeg, ffprobe or espeak-ng is missing", allow_module_level=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    (tmp_path / "logs").mkdir()
    live = LiveServer(tmp_path / "data", tmp_path / "logs")
    live.start(create_key="curl")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mediagen.talking_video(tmp_path_factory.mktemp("media") / "talk.mp4", SENTENCE, size="320x180")


def aspect_examples() -> dict[str, str]:
    """`## name` -> the curl command under it."""
    found = re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", EXAMPLES.read_text(), re.S | re.M)
    return {name: body.strip() for name, body in found}


def readme_walkthrough() -> str:
    section = README.read_text().split("## Try the API with curl", 1)[1]
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found, "the README's curl section has no bash block"
    return found.group(1)


def wait_settled(client: httpx.Client, asset_id: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        asset: dict[str, Any] = client.get(f"/v1/assets/{asset_id}").json()
        if asset["status"] in ("ready", "failed"):
            return asset
        time.sleep(0.5)
    raise AssertionError(f"asset {asset_id} did not settle: {asset}")


class Aspect:
    """Runs Aspect's examples against `server`, its placeholders filled from `values`."""

    def __init__(self, server: LiveServer) -> None:
        assert server.key
        self.env = {**os.environ, "ASPECT_URL": f"{server.url}/v1", "ASPECT_API_KEY": server.key}
        self.examples = aspect_examples()
        self.values: dict[str, str] = {}

    def run(self, name: str) -> Any:
        command = self.examples[name]
        for placeholder, value in self.values.items():
            command = command.replace(placeholder, value)
        assert "<" not in command.replace("<<", ""), f"unfilled placeholder in {command}"
        done = subprocess.run(
            ["bash", "-c", command], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"{name}: {done.stderr}"
        body = json.loads(done.stdout)
        assert set(body) != {"error"}, f"{name}: {body}"  # an error answer is {"error": {...}} alone
        return body


def test_aspect_curl_examples_run_verbatim(server: LiveServer, clip: Path) -> None:
    aspect = Aspect(server)
    assert set(aspect.examples) == {
        "create_index", "upload_file", "rerun_features", "active_tasks", "get_task", "list_assets",
        "get_asset", "download",
    }  # fmt: skip
    client = server.client()

    # Index create, as Aspect spells it: POST .../indexes/ (a trailing slash, no -L)
    index = aspect.run("create_index")
    assert index["name"] == "My Project" and index["description"] == "Demo index"
    assert set(index["default_features"]) == {"proxy", "preview", "embedding", "transcription"}
    assert client.get(f"/v1/indexes/{index['id']}").json()["name"] == "My Project"

    # A file upload in a form, with repeated features
    aspect.values.update({"<INDEX_UUID>": index["id"], "/path/to/sample.mp4": str(clip)})
    created = aspect.run("upload_file")
    asset = created["asset"]
    assert asset["name"] == "sample.mp4" and asset["save_original"] is True
    assert {"embedding", "transcription"} <= set(asset["features"])
    assert created["task"]["kind"] == "ingest"
    settled = wait_settled(client, asset["id"])
    assert settled["status"] == "ready", settled
    assert settled["features"]["transcription"]["state"] == "completed"

    # Tasks: re-run features, then the active list and the task itself
    aspect.values["<ASSET_UUID>"] = asset["id"]
    task = aspect.run("rerun_features")
    assert task["kind"] == "rerun" and set(task["features"]) == {"embedding", "transcription"}
    active = aspect.run("active_tasks")
    assert all(t["state"] in ("queued", "processing") for t in active["data"])
    assert {t["id"] for t in active["data"]} <= {task["id"]}
    aspect.values["<TASK_UUID>"] = task["id"]
    assert aspect.run("get_task")["id"] == task["id"]

    # Reads: the index's assets, the asset with its feature states
    assert [a["id"] for a in aspect.run("list_assets")["data"]] == [asset["id"]]
    got = aspect.run("get_asset")
    assert got["id"] == asset["id"] and got["features"]["proxy"]["state"] == "completed"

    # The download: a signed URL that serves the original
    signed = aspect.run("download")
    original = httpx.get(signed["url"], timeout=30)
    assert original.status_code == 200 and original.content == clip.read_bytes()


def test_readme_walkthrough_works_twice_on_a_fresh_server(
    server: LiveServer, clip: Path, tmp_path: Path
) -> None:
    block = readme_walkthrough()
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(clip, work / "clip.mp4")
    assert server.key
    env = {**os.environ, "MI": server.url, "KEY": server.key}
    indexes: list[str] = []
    for run in (1, 2):
        # When the block runs as written (stopping at the first failing command)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        out = done.stdout
        assert done.returncode == 0, f"run {run}: {out}\n{done.stderr}"
        # Then each step says what it did
        first = re.search(r"^1\. (created|reusing) index (idx_\w+)$", out, re.M)
        assert first and first.group(1) == ("created" if run == 1 else "reusing"), out
        indexes.append(first.group(2))
        assert re.search(r"^2\. created asset ast_\w+, status awaiting_upload$", out, re.M), out
        assert "3. uploaded clip.mp4: HTTP 200" in out
        assert re.search(r"^4\. ready .*transcription=completed", out, re.M), out
        assert re.search(r"^5\. derivatives: .*proxy", out, re.M) and "WEBVTT" in out, out
        assert re.search(r"^5\. search: \d+ hits$", out, re.M), out
        assert "6. got a signed download URL" in out
        assert "6. downloaded.mp4 is the original, byte for byte" in out
        assert re.search(r"^7\. form upload: asset ast_\w+, ingest task tsk_\w+$", out, re.M), out
    # And the second run reused the first one's index
    assert indexes[0] == indexes[1]
    assert (work / "downloaded.mp4").read_bytes() == clip.read_bytes()
