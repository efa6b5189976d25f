"""The bad input catalogue: each request answers its documented error code and stores NOTHING (the
tenant's asset list and the blob folder are unchanged). Media bombs are accepted as uploads (the
contract) and end `failed` with `media_too_large` before anything decodes them.

Already covered elsewhere (not repeated here, listed in docs/reliability.md): a name without an
extension, text/plain bodies, zero and over-limit size_bytes, oversized and nested user_metadata on
create, asset_url to 127.0.0.1 / localhost / 169.254.169.254 / 10/8 / [::1] / file: / ftp:
(tests/functional/test_api_assets.py), query_image_url SSRF (test_api_security.py)."""

from __future__ import annotations

import http.server
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.domain.errors import ValidationError
from mediaindex.net.download import download
from tests import mediagen
from tests.apiclient import Api, error_code
from tests.functional.conftest import BASE_URL, make_settings


@pytest.fixture
def local(data_dir: Path) -> Iterator[tuple[Runtime, Api, dict[str, Any]]]:
    runtime = build_local(make_settings(data_dir))
    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
        api = Api(client, runtime.services.keys.create_key("acme")[2])
        idx = api.index(default_features=["proxy", "preview"])
        yield runtime, api, idx
    runtime.close()


def _stored(runtime: Runtime, api: Api) -> tuple[list[str], list[str]]:
    blobs = runtime.settings.data_dir / "blobs"
    files = sorted(p.relative_to(blobs).as_posix() for p in blobs.rglob("*") if p.is_file())
    assets = [a["id"] for a in api.ok("GET", "/v1/assets", params={"limit": 100})["data"]]
    return assets, files


# ---- names, bodies, fields -----------------------------------------------------------------------

NAME_CASES = [
    ("../../etc/passwd.mp4", "parameter_invalid"),
    ("..\\..\\boot.ini.mp4", "parameter_invalid"),
    ("clip\x00.mp4", "asset_name_invalid"),
    ("clip\n.mp4", "asset_name_invalid"),
    ("clip\x1b[31m.mp4", "asset_name_invalid"),
    ("clip\x85.mp4", "asset_name_invalid"),  # C1 control (NEL)
    ("invoice\u202egpj.mp4", "asset_name_invalid"),  # RIGHT-TO-LEFT OVERRIDE: reads "invoice4pm.jpg"
    ("a\u2066b\u2069.mp4", "asset_name_invalid"),  # bidi isolates
    ("c" * 10_000 + ".mp4", "parameter_invalid"),
    ("..", "parameter_invalid"),
    ("   ", "parameter_invalid"),
    (".mp4", "asset_name_extension_required"),
]


@pytest.mark.parametrize(("name", "code"), NAME_CASES, ids=lambda v: repr(v)[:24])
def test_bad_names_are_refused_and_store_nothing(
    local: tuple[Runtime, Api, dict[str, Any]], name: str, code: str
) -> None:
    runtime, api, idx = local
    before = _stored(runtime, api)
    resp = api.call("POST", "/v1/assets", json={"index_id": idx["id"], "name": name})
    assert resp.status_code == 400 and error_code(resp) == code, resp.text
    assert resp.json()["error"]["field"] == "name"
    # The same name through the form route
    resp = api.call(
        "POST", "/v1/assets", data={"index_id": idx["id"], "name": name}, files={"asset_file": ("x", b"abc")}
    )
    assert resp.status_code == 400 and error_code(resp) == code, resp.text
    assert _stored(runtime, api) == before


BODY_CASES: list[tuple[dict[str, Any], int, str]] = [
    ({"content": b'{"index_id": "idx_x", "name": "a.mp4"', "headers": {"content-type": "application/json"}},
     400, "invalid_json"),
    ({"content": b"\xff\xfe\x00garbage", "headers": {"content-type": "application/json"}},
     400, "invalid_json"),
    ({"content": b"[1, 2, 3]", "headers": {"content-type": "application/json"}}, 400, "parameter_invalid"),
    ({"content": b"<asset name='a.mp4'/>", "headers": {"content-type": "application/xml"}},
     400, "content_type_unsupported"),
    ({"content": b"\x89PNG\r\n\x1a\n", "headers": {"content-type": "image/png"}},
     400, "content_type_unsupported"),
    ({"json": {"index_id": "IDX", "name": "a.mp4", "admin": True}}, 400, "parameter_unknown"),
    ({"json": {"index_id": "IDX", "name": "a.mp4", "size_bytes": -1}}, 400, "parameter_invalid"),
    ({"json": {"index_id": "IDX", "name": "a.mp4", "size_bytes": "ten"}}, 400, "parameter_invalid"),
    ({"json": {"index_id": "IDX", "name": "a.mp4", "size_bytes": 1.5}}, 400, "parameter_invalid"),
    ({"json": {"index_id": "IDX", "name": "a.mp4", "size_bytes": 2**70}}, 413, "asset_file_too_large"),
    ({"json": {"index_id": "IDX", "name": "a.mp4", "features": ["mine_bitcoin"]}}, 400, "parameter_invalid"),
    ({"json": {"index_id": "IDX", "name": "a.mp4", "user_metadata": ["not", "an", "object"]}},
     400, "parameter_invalid"),
    ({"json": {"index_id": "IDX", "name": "a.mp4", "content_type": "x" * 300}}, 400, "parameter_invalid"),
    ({"json": {"index_id": "IDX", "name": "a.mp4", "asset_url": "http://" + "a" * 5000 + ".com/a.mp4"}},
     400, "parameter_invalid"),
    ({"json": {"index_id": "IDX"}}, 400, "parameter_missing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kw", "status", "code"), BODY_CASES, ids=[c[2] + str(i) for i, c in enumerate(BODY_CASES)]
)
def test_bad_bodies_are_refused_and_store_nothing(
    local: tuple[Runtime, Api, dict[str, Any]], kw: dict[str, Any], status: int, code: str
) -> None:
    runtime, api, idx = local
    if "json" in kw:
        kw = {"json": {k: (idx["id"] if v == "IDX" else v) for k, v in kw["json"].items()}}
    before = _stored(runtime, api)
    resp = api.call("POST", "/v1/assets", **kw)
    assert resp.status_code == status and error_code(resp) == code, resp.text
    assert _stored(runtime, api) == before


def test_patch_with_oversized_or_bad_metadata_changes_nothing(
    local: tuple[Runtime, Api, dict[str, Any]],
) -> None:
    _, api, idx = local
    asset = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4"})["asset"]
    before = api.ok("GET", f"/v1/assets/{asset['id']}")
    for body, code in (
        ({"user_metadata": {"k": "x" * 20_000}}, "user_metadata_too_large"),
        ({"user_metadata": {f"k{i}": "y" * 100 for i in range(200)}}, "user_metadata_too_large"),
        ({"user_metadata": {"k": [1, 2]}}, "parameter_invalid"),
        ({"name": "../x.mp4"}, "parameter_invalid"),
        ({"owner": "mallory"}, "parameter_unknown"),
    ):
        resp = api.call("PATCH", f"/v1/assets/{asset['id']}", json=body)
        assert resp.status_code == 400 and error_code(resp) == code, (body, resp.text)
    assert api.ok("GET", f"/v1/assets/{asset['id']}") == before


# ---- asset_url: SSRF --------------------------------------------------------------------------

FORBIDDEN_URLS = [
    "http://172.16.0.1/a.mp4",
    "http://192.168.1.1/a.mp4",
    "http://100.64.0.1/a.mp4",  # carrier-grade NAT
    "http://0.0.0.0:8000/a.mp4",
    "http://2130706433/a.mp4",  # 127.0.0.1 as one decimal number
    "http://0x7f.0.0.1/a.mp4",
    "http://127.1/a.mp4",
    "http://[::ffff:127.0.0.1]/a.mp4",
    "http://[fe80::1]/a.mp4",
    "http://[fd00:ec2::254]/latest/meta-data/",  # EC2 metadata over IPv6
    "http://169.254.170.2/v2/credentials",  # ECS task credentials
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/computeMetadata/v1/",
    "http://api.localhost/a.mp4",
    "http://user:pass@example.com/a.mp4",
    "gopher://example.com/_a.mp4",
    "data:video/mp4;base64,AAAA",
    "javascript:alert(1)",
    "file://localhost/etc/passwd",
    "//example.com/a.mp4",
]


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
def test_asset_url_outside_the_public_internet_is_refused(
    local: tuple[Runtime, Api, dict[str, Any]], url: str
) -> None:
    runtime, api, idx = local
    before = _stored(runtime, api)
    resp = api.call("POST", "/v1/assets", json={"index_id": idx["id"], "name": "a.mp4", "asset_url": url})
    assert resp.status_code == 400, resp.text
    assert error_code(resp) in ("asset_url_forbidden", "asset_url_invalid"), resp.text
    assert _stored(runtime, api) == before


class _Redirector(http.server.BaseHTTPRequestHandler):
    target = "http://169.254.169.254/latest/meta-data/"
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", self.target if self.path == "/start" else self.path)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def redirector() -> Iterator[tuple[str, type[_Redirector]]]:
    handler = type("Handler", (_Redirector,), {"hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _pretend_public(host: str, port: int) -> list[str]:
    """A resolver under which the loopback test server passes for a public host; every other name
    resolves to itself, so a redirect's target is judged by its real address."""
    return ["93.184.216.34"] if host == "127.0.0.1" else [host]


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.1/internal",
        "file:///etc/passwd",
    ],
)
def test_a_redirect_into_private_space_is_refused_before_it_is_followed(
    redirector: tuple[str, type[_Redirector]], tmp_path: Path, target: str
) -> None:
    base, handler = redirector
    handler.target = target
    dest = tmp_path / "out"
    with httpx.Client() as client, pytest.raises(ValidationError) as exc:
        download(
            f"{base}/start",
            dest,
            max_bytes=1024,
            allow_private=False,
            timeout_s=5,
            max_redirects=5,
            client=client,
            resolver=_pretend_public,
        )
    assert exc.value.code == "asset_url_forbidden"
    assert handler.hits == ["/start"]  # the first hop was fetched, the forbidden one never
    assert not dest.exists()


def test_a_redirect_loop_gives_up(redirector: tuple[str, type[_Redirector]], tmp_path: Path) -> None:
    base, handler = redirector
    with httpx.Client() as client, pytest.raises(ValidationError) as exc:
        download(
            f"{base}/loop",
            tmp_path / "out",
            max_bytes=1024,
            allow_private=False,
            timeout_s=5,
            max_redirects=3,
            client=client,
            resolver=_pretend_public,
        )
    assert exc.value.code == "asset_url_unreachable"
    assert len(handler.hits) == 4


# ---- media bombs ---------------------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR claims width x height (CRC recomputed): 69 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def mp3_claiming(path: Path, seconds: float) -> bytes:
    """One second of silent MP3 whose Xing/Info header claims `seconds` (about 4 KB)."""
    mediagen_run = mediagen.FFMPEG
    import subprocess

    subprocess.run(
        [*mediagen_run, "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "1", "-c:a", "libmp3lame",
         "-b:a", "32k", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    tag = max(data.find(b"Info"), data.find(b"Xing"))
    assert tag > 0, "no Xing/Info header"
    data[tag + 8 : tag + 12] = struct.pack(">I", int(seconds * 44100 / 1152))
    return bytes(data)


@pytest.mark.parametrize("kind", ["png-16000x16000", "png-100000x100000", "mp3-10h"])
def test_media_bombs_end_failed_and_nothing_is_processed(
    local: tuple[Runtime, Api, dict[str, Any]], tmp_path: Path, kind: str
) -> None:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg is needed")
    runtime, api, idx = local
    # Given a tiny file that claims to be enormous
    if kind.startswith("png"):
        side = int(kind.split("x")[-1])
        name, data = "bomb.png", png_claiming(side, side)
    else:
        name, data = "long.mp3", mp3_claiming(tmp_path / "s.mp3", 10 * 3600)
    assert len(data) < 8192
    # When it is uploaded and the pipeline runs
    asset = api.upload(idx["id"], name, data)
    t0 = time.monotonic()
    runtime.executor.pool.run_until_idle()
    took = time.monotonic() - t0
    # Then it ends failed before anything decoded it, and no derivative exists
    done = api.ok("GET", f"/v1/assets/{asset['id']}")
    assert done["status"] == "failed", done
    # (ffprobe reports 0x0 for 100000x100000, past its own limit: the header is read directly.)
    assert done["error"]["code"] == "media_too_large", done
    assert {f["state"] for f in done["features"].values()} == {"failed"}
    assert api.ok("GET", f"/v1/assets/{asset['id']}/derivatives")["data"] == []
    tenant = runtime.services.keys.authenticate(api.key).tenant_id
    assert [k for k in runtime.blobs.list_keys("derived/") if tenant in k.split("/")] == []
    assert took < 10, f"refusing a bomb took {took:.1f} s"
    print(f"bomb[{kind}]: {len(data)} bytes -> {done['error']['code']} in {took:.2f} s")


# ---- headers that claim less than the file holds -------------------------------------------------


def mp3_lasting(path: Path, seconds: float, *, claiming: float) -> bytes:
    """`seconds` of silent MP3 (8 kHz mono, 8 kbit/s: 1 KB a second) whose Xing/Info header claims
    only `claiming` seconds: the reverse of `mp3_claiming`, patched the same way."""
    import subprocess

    subprocess.run(
        [*mediagen.FFMPEG, "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", str(seconds),
         "-c:a", "libmp3lame", "-b:a", "8k", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    tag = max(data.find(b"Info"), data.find(b"Xing"))
    assert tag > 0, "no Xing/Info header"
    data[tag + 8 : tag + 12] = struct.pack(">I", int(claiming * 8000 / 576))  # 576 samples a frame
    return bytes(data)


LIE_LIMIT_S = 60.0  # the media limit in these tests; the file claims 30 s and lasts 10 minutes


@pytest.fixture(scope="module")
def lying_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg is needed")
    d = tmp_path_factory.mktemp("lie")
    path = d / "lie.mp3"
    path.write_bytes(mp3_lasting(d / "raw.mp3", 600, claiming=30))
    from mediaindex.media import probe

    assert 29 <= (probe.describe(path).duration_s or 0) <= 31  # ffprobe believes the header
    return path


def test_a_header_that_claims_less_than_the_file_holds_fails_at_the_cap(
    data_dir: Path, lying_mp3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a media limit of 60 s and a file whose header claims 30 s but that lasts 10 minutes
    runtime = build_local(make_settings(data_dir, max_duration_s=LIE_LIMIT_S))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))  # where the steps' workdirs go
    peak = {"bytes": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            used = sum(p.stat().st_size for p in scratch.rglob("*") if p.is_file())
            peak["bytes"] = max(peak["bytes"], used)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            idx = api.index(default_features=["proxy", "preview", "transcription"])
            asset = api.upload(idx["id"], "lie.mp3", lying_mp3.read_bytes())
            # When the pipeline runs
            watcher.start()
            t0 = time.monotonic()
            runtime.executor.pool.run_until_idle()
            took = time.monotonic() - t0
            stop.set()
            # Then the decode stops at the cap and the asset fails as too large, quickly
            done = api.ok("GET", f"/v1/assets/{asset['id']}")
            assert done["status"] == "failed" and done["error"]["code"] == "media_too_large", done
            assert "decodes past the limit of 60 s" in done["error"]["message"]
            assert api.ok("GET", f"/v1/assets/{asset['id']}/derivatives")["data"] == []
    finally:
        stop.set()
        runtime.close()
    size = lying_mp3.stat().st_size
    # The scratch space held the original and a few KB: 10 minutes decoded to WAV would be 19 MB
    assert peak["bytes"] < size + 512 * 1024, peak
    assert took < 10, took
    print(f"header claims 30 s, file lasts 600 s, limit 60 s: failed media_too_large in {took:.2f} s,"
          f" peak scratch {peak['bytes']} bytes (original {size})")  # fmt: skip


@pytest.mark.parametrize(
    ("step", "features"),
    [
        ("render", {"proxy"}),
        ("render", {"preview"}),
        ("render", {"proxy", "preview"}),
        ("transcription", set()),
    ],
)
def test_each_decoding_step_stops_at_the_cap_when_the_header_lies(
    data_dir: Path, lying_mp3: Path, tmp_path: Path, step: str, features: set[str]
) -> None:
    """Past probe (say it ran under an older limit): each step that decodes the whole stream is
    capped on its own, whichever of its parts run, so the 10 minutes are never decoded."""
    import importlib

    from mediaindex.domain.errors import MediaError
    from mediaindex.domain.models import Asset, Feature, MediaFacts, MediaType, UploadInfo
    from mediaindex.pipeline.context import StepContext

    runtime = build_local(make_settings(data_dir, max_duration_s=LIE_LIMIT_S))
    try:
        key = "originals/ten_x/ast_x/original.mp3"
        runtime.blobs.put_file(key, lying_mp3, "audio/mpeg")
        asset = Asset(
            id="ast_x",
            tenant_id="ten_x",
            index_id="idx_x",
            name="lie.mp3",
            media_type=MediaType.AUDIO,
            duration_s=30.0,  # what the header claims
            facts=MediaFacts(format_name="mp3", audio_codec="mp3", has_audio=True),
            upload=UploadInfo(key=key, completed=True),
        )
        work = tmp_path / "work"
        work.mkdir()
        ctx = StepContext(
            asset=asset,
            blobs=runtime.blobs,
            workdir=work,
            settings=runtime.settings,
            models=runtime.runner.models if runtime.runner else None,  # type: ignore[arg-type]
            features=frozenset(Feature(f) for f in features),
        )
        module = importlib.import_module(f"mediaindex.pipeline.steps.{step}")
        t0 = time.monotonic()
        with pytest.raises(MediaError) as exc:
            module.run(ctx)
        took = time.monotonic() - t0
        assert exc.value.code == "media_too_large", exc.value.message
        written = sum(p.stat().st_size for p in work.rglob("*") if p.is_file()) - lying_mp3.stat().st_size
        # At most the limit's worth of output: a 16 kHz WAV of 62 s is 2 MB; 600 s would be 19 MB
        assert written < 2.1 * 1024 * 1024, written
        assert took < 10, took
        print(f"{step}: stopped at the cap with media_too_large in {took:.2f} s, {written} bytes written")
    finally:
        runtime.close()
