"""`mediaindex aws smoke`: after a deployment, prove the whole path on the real stack through its
public API only: an index, a generated spoken clip uploaded to its signed URL, the pipeline to
`ready` (proxy, preview, transcript, embeddings), the transcript holding the spoken words, and a
search for the phrase answering with that asset at the second it was said. It cleans up after
itself (the asset, and the index when it made it) unless told to keep them."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediaindex import samples
from mediaindex.client import ApiError, Client

PHRASE = "the lighthouse keeper counts seven ships before dawn"
QUERY = "lighthouse keeper counting ships"
INDEX_NAME = "mediaindex-smoke"
LEAD_SILENCE_S = 1.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


class Smoke:
    def __init__(self, client: Client, *, out: Callable[[str], None], timeout_s: float) -> None:
        self._client = client
        self._out = out
        self._timeout_s = timeout_s
        self.checks: list[Check] = []

    def _check(self, name: str, started: float, ok: bool, detail: str) -> bool:
        check = Check(name, ok, detail, time.monotonic() - started)
        self.checks.append(check)
        self._out(f"{'ok  ' if ok else 'FAIL'} {name:28} {check.seconds:6.1f} s  {detail}")
        return ok

    def run(self, *, keep: bool) -> bool:
        if not samples.have_tools():
            self._out("the smoke test generates its clip with ffmpeg and espeak-ng: install them first")
            return False
        t = time.monotonic()
        health = self._client.request("GET", "/v1/health")
        self._check("health", t, health.get("status") == "ok", f"runtime {health.get('runtime')}")
        made_index = False
        try:
            index = self._client.index_by_name(INDEX_NAME, create=False)
        except ApiError:
            index, made_index = self._client.index_by_name(INDEX_NAME), True
        asset: dict[str, Any] | None = None
        try:
            asset = self._upload(index["id"])
            return self._verify(index["id"], asset)
        finally:
            if not keep:
                self._cleanup(index["id"] if made_index else None, asset)

    def _upload(self, index_id: str) -> dict[str, Any]:
        t = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="mediaindex-smoke-") as tmp:
            clip = samples.talking_video(Path(tmp) / "smoke.mp4", PHRASE, lead_silence_s=LEAD_SILENCE_S)
            asset = self._client.upload(index_id, clip, user_metadata={"source": "smoke"})
        self._check("upload to signed URL", t, bool(asset.get("id")), asset.get("id", ""))
        return asset

    def _verify(self, index_id: str, asset: dict[str, Any]) -> bool:
        t = time.monotonic()
        done = self._client.wait_settled(asset["id"], timeout_s=self._timeout_s, poll_s=2.0)
        states = ", ".join(f"{f}={s['state']}" for f, s in done["features"].items())
        if not self._check("pipeline ready", t, done["status"] == "ready", states):
            return False
        t = time.monotonic()
        kinds = {
            d["kind"] for d in self._client.request("GET", f"/v1/assets/{asset['id']}/derivatives")["data"]
        }
        self._check(
            "proxy and preview", t, {"proxy", "poster", "thumbnail"} <= kinds, ", ".join(sorted(kinds))
        )
        t = time.monotonic()
        text = str(
            self._client.request("GET", f"/v1/assets/{asset['id']}/transcript", params={"format": "txt"})
        ).lower()
        heard = [w for w in ("lighthouse", "keeper", "ships") if w in text]
        self._check("transcript", t, len(heard) >= 2, repr(text.strip()[:80]))
        t = time.monotonic()
        hits = self._client.request(
            "POST", "/v1/search", json={"index_id": index_id, "query_text": QUERY, "limit": 3}
        )["data"]
        top = hits[0] if hits else None
        at_second = bool(top and top["asset_id"] == asset["id"] and top["start"] <= LEAD_SILENCE_S + 1.0)
        where = f"top hit {top['asset_id']} {top['start']:.1f}-{top['end']:.1f} s" if top else "no hits"
        self._check("search finds the second", t, at_second, where)
        return all(c.ok for c in self.checks)

    def _cleanup(self, index_id: str | None, asset: dict[str, Any] | None) -> None:
        try:
            if index_id is not None:
                self._client.request("DELETE", f"/v1/indexes/{index_id}")
            elif asset is not None:
                self._client.request("DELETE", f"/v1/assets/{asset['id']}")
        except ApiError as e:
            self._out(f"cleanup failed: {e}")


def run_smoke(
    client: Client, *, out: Callable[[str], None], timeout_s: float = 900.0, keep: bool = False
) -> int:
    """0 when every check passed, 1 otherwise."""
    return 0 if Smoke(client, out=out, timeout_s=timeout_s).run(keep=keep) else 1
