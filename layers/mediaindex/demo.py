"""`mediaindex demo`: generate sample media, ingest it through the API with progress bars, run a
few searches, print a results table, then point at the playground."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mediaindex import samples
from mediaindex.client import Client

CLIPS = {
    "harbour.mp4": "the ferry leaves the harbour at seven in the morning",
    "kitchen.mp4": "add two cups of flour and stir the batter slowly",
    "weather.mp4": "heavy rain is expected across the northern mountains tonight",
}
QUERIES = ["when does the ferry leave", "flour and batter", "rain in the mountains"]


def make_media(folder: Path) -> list[Path]:
    paths = [samples.talking_video(folder / name, text) for name, text in CLIPS.items()]
    paths.append(samples.image(folder / "test-card.png", size="640x360"))
    return paths


def run_demo(
    client: Client, *, progress: Callable[[str], Callable[[int, int], None]], out: Callable[[str], None]
) -> int:
    if not samples.have_tools():
        out("the demo needs ffmpeg and espeak-ng (make deps installs them)")
        return 1
    index = client.index_by_name("demo")
    with tempfile.TemporaryDirectory(prefix="mediaindex-demo-") as tmp:
        out("generating sample media with ffmpeg and espeak-ng ...")
        paths = make_media(Path(tmp))
        assets = [
            client.upload(index["id"], p, user_metadata={"source": "demo"}, progress=progress(p.name))
            for p in paths
        ]
    out("processing (proxy, preview, transcription, embedding) ...")
    t0 = time.monotonic()
    for a in assets:
        done = client.wait_settled(a["id"], timeout_s=900)
        states = ", ".join(f"{f}={s['state']}" for f, s in done["features"].items())
        out(f"  {done['name']:16} {done['status']:7} {states}")
    out(f"ready in {time.monotonic() - t0:.1f} s\n")
    names = {a["id"]: a["name"] for a in assets}
    out(f"{'query':32} {'rank':>4}  {'asset':16} {'start':>6} {'end':>6} {'score':>7}  text")
    for q in QUERIES:
        hits = client.request(
            "POST", "/v1/search", json={"index_id": index["id"], "query_text": q, "limit": 3}
        )
        for rank, h in enumerate(hits["data"], 1):
            text = (h.get("text") or "")[:40]
            out(
                f"{q if rank == 1 else '':32} {rank:>4}  {names.get(h['asset_id'], h['asset_id']):16}"
                f" {h['start']:6.1f} {h['end']:6.1f} {h['score']:7.4f}  {text}"
            )
    return 0
