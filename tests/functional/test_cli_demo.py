"""`mediaindex demo` run twice on one data dir: first on a server of its own, then on the server
serving that dir; the second run reuses the index and uploads nothing again."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from mediaindex.demo import CLIPS
from tests import mediagen
from tests.functional.test_cli import mi
from tests.reliability.conftest import LiveServer

pytestmark = pytest.mark.skipif(not mediagen.have_tools(), reason="ffmpeg, ffprobe or espeak-ng is missing")
SAMPLES = sorted([*CLIPS, "test-card.png"])
_KEY = re.compile(r"^API key for tenant 'demo' \(shown once\): (\S+)$", re.M)


def _demo_assets(url: str, key: str) -> list[str]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        indexes = api.get("/v1/indexes").json()["data"]
        assert [i["name"] for i in indexes] == ["demo"]
        assets = api.get("/v1/assets", params={"index_id": indexes[0]["id"], "limit": 100}).json()["data"]
        return sorted(a["name"] for a in assets)


@pytest.mark.slow
def test_the_demo_runs_again_on_the_running_server_without_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    here = tmp_path / "work"
    here.mkdir()
    # First run: no server is up, so the demo serves the data dir itself on a free port
    first = mi("--data-dir", str(data), "demo", "--exit", cwd=here, timeout_s=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(r"^serving .* at http://127\.0\.0\.1:\d+ for the demo$", first.stdout, re.M)
    # Its results name the assets, never their ids
    assert re.search(r"^  harbour\.mp4 +\d\d:\d\d-\d\d:\d\d +[01]\.\d{3} ", first.stdout, re.M), first.stdout
    assert "ast_" not in first.stdout
    # Second run: a server now serves that dir; the demo finds it through the dir's lock file
    server = LiveServer(data, here)
    server.start()
    try:
        second = mi("--data-dir", str(data), "demo", cwd=here, timeout_s=600)
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"using the server at {server.url}" in second.stdout
        assert f"{len(SAMPLES)} of {len(SAMPLES)} samples were already in the index 'demo'" in second.stdout
        found = _KEY.search(second.stdout)
        assert found, second.stdout
        # And the index holds each sample once
        assert _demo_assets(server.url, found.group(1)) == SAMPLES
    finally:
        server.stop()
