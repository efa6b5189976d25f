"""`mediaindex demo`: generate sample media, ingest it through the API into the index `demo`, run a
few searches and show their hits. Re-runnable: a sample already in the index (same name and size,
not failed) is not uploaded again, so a second run only searches."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mediaindex import samples
from mediaindex.client import Client

INDEX_NAME = "demo"
CLIPS = {
    "harbour.mp4": "the ferry leaves the harbour at seven in the morning",
    "kitchen.mp4": "add two cups of flour and stir the batter slowly",
    "weather.mp4": "heavy rain is expected across the northern mountains tonight",
}
QUERIES = ["when does the ferry leave", "flour and batter", "rain in the mountains"]
Asset = dict[str, Any]


def make_media(folder: Path, clips: dict[str, str] = CLIPS) -> list[Path]:
    paths = [samples.talking_video(folder / name, text) for name, text in clips.items()]
    paths.append(samples.image(folder / "test-card.png", size="640x360"))
    return paths


def run_demo(
    client: Client,
    *,
    progress: Callable[[str], Callable[[int, int], None]],
    out: Callable[[str], None],
    wait: Callable[[list[Asset]], list[Asset]],
    show_hits: Callable[[str, list[Asset]], None],
    clips: dict[str, str] = CLIPS,
    queries: list[str] = QUERIES,
) -> int:
    """`wait` blocks until the assets settle (showing progress) and returns them; `show_hits`
    prints one query's hits (each with its `asset_name`)."""
    if not samples.have_tools():
        out("the demo needs ffmpeg and espeak-ng (make deps installs them)")
        return 1
    index = client.index_by_name(INDEX_NAME)
    present = {a["name"]: a for a in client.list_assets(index["id"])}
    with tempfile.TemporaryDirectory(prefix="mediaindex-demo-") as tmp:
        out("generating sample media with ffmpeg and espeak-ng ...")
        assets = [
            _ensure(client, index["id"], p, present.get(p.name), progress)
            for p in make_media(Path(tmp), clips)
        ]
    kept = sum(a["id"] == present.get(a["name"], {}).get("id") for a in assets)
    if kept:
        out(f"{kept} of {len(assets)} samples were already in the index {INDEX_NAME!r}")
    out("processing (proxy, preview, transcription, embedding) ...")
    t0 = time.monotonic()
    settled = wait(assets)
    failed = [a for a in settled if a["status"] != "ready"]
    out(f"{len(settled) - len(failed)} of {len(settled)} ready in {time.monotonic() - t0:.1f} s")
    for q in queries:
        show_hits(q, client.search(index["id"], q, limit=3))
    return 1 if failed else 0


def _ensure(
    client: Client,
    index_id: str,
    path: Path,
    present: Asset | None,
    progress: Callable[[str], Callable[[int, int], None]],
) -> Asset:
    """The index's asset for this sample: the one already there when it has the same size and did
    not fail; otherwise (an earlier run failed or was cut off mid-upload) a fresh upload."""
    if present is not None:
        if present["size_bytes"] == path.stat().st_size and present["status"] in ("ready", "processing"):
            return present
        client.request("DELETE", f"/v1/assets/{present['id']}")
    return client.upload(index_id, path, user_metadata={"source": "demo"}, progress=progress(path.name))
