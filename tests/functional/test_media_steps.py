"""The media steps (probe; render, for the proxy and the previews) over real files made by ffmpeg,
through a StepContext with the real local blob store. Outputs are checked with ffprobe/ffmpeg
themselves, not with our wrappers."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.domain.blob_keys import LAYOUT_TENANT_FIRST, asset_prefixes, original_key
from mediaindex.domain.errors import MediaError
from mediaindex.domain.models import Asset, Derivative, Feature, FeatureStatus, MediaType, UploadInfo
from mediaindex.media import ffmpeg, probe
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.spec import STEP_BY_NAME, STEPS
from mediaindex.pipeline.steps import get_step
from mediaindex.pipeline.steps import preview as preview_step
from mediaindex.pipeline.steps import probe as probe_step
from mediaindex.pipeline.steps import render as render_step
from mediaindex.settings import Settings
from tests import mediagen

pytestmark = pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg, ffprobe and espeak-ng")

FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]


# ---------------------------------------------------------------- helpers


def ffprobe_json(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return cast(dict[str, Any], json.loads(out.stdout))


def streams(path: Path, kind: str) -> list[dict[str, Any]]:
    return [s for s in ffprobe_json(path)["streams"] if s["codec_type"] == kind]


def duration(path: Path) -> float:
    return float(ffprobe_json(path)["format"]["duration"])


def image_size(path: Path) -> tuple[int, int]:
    v = streams(path, "video")[0]
    return int(v["width"]), int(v["height"])


def frame_intervals(path: Path) -> list[float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
         "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    pts = sorted(float(x.strip(",")) for x in out.stdout.split() if x.strip(","))
    return [b - a for a, b in itertools.pairwise(pts)]


def decode_errors(path: Path) -> str:
    out = subprocess.run(
        [*FF, "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    assert out.returncode == 0
    return out.stderr.strip()


class Pipeline:
    """Runs steps the way the executor does: the original in blob storage, the asset updated with
    what probe found before the next step runs."""

    def __init__(self, blobs: LocalBlobStore, root: Path, settings: Settings) -> None:
        self.blobs, self.root, self.settings = blobs, root, settings
        self.count = 0
        self._probed: dict[Path, tuple[Asset, StepResult]] = {}

    def asset_for(self, src: Path) -> Asset:
        self.count += 1
        asset_id = f"asset{self.count}"
        key = original_key("tenant1", asset_id, src.suffix.lstrip("."), LAYOUT_TENANT_FIRST)
        self.blobs.put_file(key, src, "application/octet-stream")
        return Asset(
            id=asset_id, tenant_id="tenant1", index_id="idx1", name=src.name, upload=UploadInfo(key=key)
        )

    def run(self, step: str, asset: Asset, settings: Settings | None = None) -> StepResult:
        """Runs `step` as a task asking for its features would; `proxy` and `preview` run the
        render step for that feature alone."""
        workdir = self.root / f"{asset.id}-{step}-{self.count}"
        workdir.mkdir(parents=True, exist_ok=True)
        alone = {"proxy": Feature.PROXY, "preview": Feature.PREVIEW}
        features = frozenset([alone[step]] if step in alone else STEP_BY_NAME[step].features)
        ctx = StepContext(
            asset=asset,
            blobs=self.blobs,
            workdir=workdir,
            settings=settings or self.settings,
            models=cast(Any, None),
            features=features,
            task_features=features,
        )
        return get_step(step)(ctx)

    def probed(self, src: Path) -> tuple[Asset, StepResult]:
        """The asset after probe (probed once per file: several tests run later steps on it)."""
        if src not in self._probed:
            asset = self.asset_for(src)
            result = self.run("probe", asset)
            self._probed[src] = (asset.model_copy(update=result.asset_updates), result)
        return self._probed[src]

    def fetch(self, d: Derivative) -> Path:
        dest = self.root / "fetched" / d.key
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.blobs.download_file(d.key, dest)
        return dest


def only(result: StepResult, kind: str) -> Derivative:
    found = [d for d in result.derivatives if d.kind == kind]
    assert len(found) == 1, [d.kind for d in result.derivatives]
    return found[0]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    m: dict[str, Path] = {}
    m["talking"] = mediagen.talking_video(
        d / "talking.mp4", "Hello from the media steps.", min_duration_s=4.0
    )
    m["silent"] = mediagen.silent_video(d / "silent.mp4", seconds=3.0)
    m["image"] = mediagen.image(d / "image.png", size="800x600")
    m["tone"] = mediagen.tone_audio(d / "tone.mp3", seconds=3.0)
    # 4:2:0 needs even sizes, so an odd-sized source is 4:4:4 (as some screen recorders write it).
    m["odd"] = d / "odd.mp4"
    subprocess.run(
        [*FF, "-f", "lavfi", "-i", "testsrc=size=321x241:rate=25:duration=2", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(m["odd"])],
        check=True,
    )  # fmt: skip
    m["truncated"] = mediagen.truncated(m["talking"], d / "truncated.mp4", keep_fraction=0.3)
    m["empty"] = d / "empty.mp4"
    m["empty"].write_bytes(b"")
    m["text"] = d / "notes.mp4"
    m["text"].write_text("this is a shopping list, not a video\n" * 20)
    # Moov atom first, then cut: ffprobe reads the header happily but the end is gone.
    long_src = mediagen.silent_video(d / "long.mp4", seconds=8.0)
    subprocess.run(
        [*FF, "-i", str(long_src), "-c", "copy", "-movflags", "+faststart", str(d / "fs.mp4")], check=True
    )
    m["cut_after_header"] = mediagen.truncated(d / "fs.mp4", d / "cut_after_header.mp4", keep_fraction=0.6)
    m["rotated"] = rotated(m["silent"], d / "rotated.mp4")
    return m


def rotated(src: Path, dest: Path) -> Path:
    """The same frames with a 90 degree display rotation (a phone held upright)."""
    subprocess.run([*FF, "-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(dest)], check=True)
    if not streams(dest, "video")[0].get("side_data_list"):  # ffmpeg 6+ dropped the rotate tag
        subprocess.run([*FF, "-display_rotation", "90", "-i", str(src), "-c", "copy", str(dest)], check=True)
    return dest


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("pipeline")
    blobs = LocalBlobStore(root / "blobs", "http://127.0.0.1:8000", b"k" * 32)
    return Pipeline(blobs, root / "work", Settings(data_dir=root / "data"))


# ---------------------------------------------------------------- probe


def test_probe_reads_a_talking_video(pipeline: Pipeline, media: dict[str, Path]) -> None:
    # Given a 640x360 H.264/AAC clip
    src = media["talking"]
    # When probe runs
    _, result = pipeline.probed(src)
    # Then the asset holds its facts, and nothing is marked not applicable
    u = result.asset_updates
    assert u["media_type"] == MediaType.VIDEO
    assert (u["width"], u["height"]) == (640, 360)
    assert abs(u["duration_s"] - duration(src)) < 0.01
    assert u["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert u["size_bytes"] == src.stat().st_size
    assert u["content_type"] == "video/mp4"
    facts = u["facts"]
    assert (facts.video_codec, facts.audio_codec, facts.pix_fmt) == ("h264", "aac", "yuv420p")
    assert facts.has_audio and facts.has_video and facts.fps == 25.0
    assert result.feature_states == {}


def test_probe_marks_transcription_na_without_audio(pipeline: Pipeline, media: dict[str, Path]) -> None:
    _, silent = pipeline.probed(media["silent"])
    _, image = pipeline.probed(media["image"])
    assert silent.asset_updates["facts"].has_audio is False
    assert silent.feature_states[Feature.TRANSCRIPTION].state == FeatureStatus.NA
    assert silent.feature_states[Feature.TRANSCRIPTION].reason == "no audio stream"
    assert image.asset_updates["media_type"] == MediaType.IMAGE
    assert image.asset_updates["duration_s"] is None
    assert (image.asset_updates["width"], image.asset_updates["height"]) == (800, 600)
    assert image.asset_updates["content_type"] == "image/png"
    assert image.feature_states[Feature.TRANSCRIPTION].reason == "images have no audio"


def test_probe_reads_audio(pipeline: Pipeline, media: dict[str, Path]) -> None:
    _, result = pipeline.probed(media["tone"])
    u = result.asset_updates
    assert u["media_type"] == MediaType.AUDIO
    assert u["width"] is None and u["facts"].has_video is False and u["facts"].has_audio is True
    assert u["content_type"] == "audio/mpeg"
    assert abs(u["duration_s"] - 3.0) < 0.1


def test_probe_swaps_dimensions_of_a_rotated_clip(pipeline: Pipeline, media: dict[str, Path]) -> None:
    # Given a 320x240 clip flagged to display rotated by 90 degrees
    _, result = pipeline.probed(media["rotated"])
    # Then it is portrait
    assert (result.asset_updates["width"], result.asset_updates["height"]) == (240, 320)
    assert result.asset_updates["facts"].rotation in (90, 270)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("empty", "asset_file_empty"),
        ("text", "unsupported_media"),
        ("truncated", "media_corrupt"),
        ("cut_after_header", "media_corrupt"),
    ],
)
def test_probe_refuses_bad_files(pipeline: Pipeline, media: dict[str, Path], name: str, code: str) -> None:
    asset = pipeline.asset_for(media[name])
    with pytest.raises(MediaError) as exc:
        pipeline.run("probe", asset)
    assert exc.value.code == code


def test_probe_refuses_media_over_the_limits(pipeline: Pipeline, media: dict[str, Path]) -> None:
    asset = pipeline.asset_for(media["silent"])
    for limits in ({"max_pixels": 320 * 240 - 1}, {"max_duration_s": 2.0}):
        with pytest.raises(MediaError) as exc:
            pipeline.run("probe", asset, Settings(**limits))
        assert exc.value.code == "media_too_large"


# ---------------------------------------------------------------- proxy


def assert_plays_to_the_end(proxy: Path, src: Path) -> None:
    assert decode_errors(proxy) == ""
    assert abs(duration(proxy) - duration(src)) <= 0.2


def test_proxy_of_a_talking_video_is_h264_aac_mp4(pipeline: Pipeline, media: dict[str, Path]) -> None:
    # Given a probed video with sound
    asset, _ = pipeline.probed(media["talking"])
    # When proxy runs
    result = pipeline.run("proxy", asset)
    # Then one H.264/AAC MP4 at the source size (already under 720p) plays to the end
    d = only(result, "proxy")
    assert result.replaced_kinds == ["proxy"]
    assert d.content_type == "video/mp4" and d.key.endswith("/proxy.mp4")
    path = pipeline.fetch(d)
    assert d.size_bytes == path.stat().st_size
    v, a = streams(path, "video")[0], streams(path, "audio")[0]
    assert (v["codec_name"], v["pix_fmt"], a["codec_name"]) == ("h264", "yuv420p", "aac")
    assert (v["width"], v["height"]) == (d.width, d.height) == (640, 360)
    assert ffprobe_json(path)["format"]["format_name"].startswith("mov,mp4")
    assert_plays_to_the_end(path, media["talking"])
    assert d.duration_s is not None and abs(d.duration_s - duration(path)) < 0.05


def test_proxy_of_a_silent_video_has_no_audio_track(pipeline: Pipeline, media: dict[str, Path]) -> None:
    asset, _ = pipeline.probed(media["silent"])
    path = pipeline.fetch(only(pipeline.run("proxy", asset), "proxy"))
    assert streams(path, "audio") == []
    assert_plays_to_the_end(path, media["silent"])


def test_proxy_makes_odd_sizes_even_and_keeps_aspect(pipeline: Pipeline, media: dict[str, Path]) -> None:
    asset, _ = pipeline.probed(media["odd"])
    d = only(pipeline.run("proxy", asset), "proxy")
    w, h = image_size(pipeline.fetch(d))
    assert (w, h) == (d.width, d.height)
    assert w % 2 == 0 and h % 2 == 0 and w <= 321 and h <= 241
    assert abs(w / h - 321 / 241) < 0.01


def test_proxy_respects_rotation(pipeline: Pipeline, media: dict[str, Path]) -> None:
    asset, _ = pipeline.probed(media["rotated"])
    path = pipeline.fetch(only(pipeline.run("proxy", asset), "proxy"))
    v = streams(path, "video")[0]
    # Upright pixels, no rotation flag left for players to apply a second time
    assert (v["width"], v["height"]) == (240, 320)
    assert not v.get("side_data_list") and "rotate" not in v.get("tags", {})


def test_proxy_scales_a_large_video_down_to_720p(pipeline: Pipeline, tmp_path: Path) -> None:
    # Given a 10-bit HEVC 1920x1080 clip
    if not ffmpeg.has_encoder("libx265"):
        pytest.skip("this ffmpeg has no libx265 to make an HEVC clip")
    src = tmp_path / "hevc10.mp4"
    subprocess.run(
        [*FF, "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=10:duration=0.5", "-c:v", "libx265",
         "-preset", "ultrafast", "-x265-params", "log-level=error", "-pix_fmt", "yuv420p10le",
         "-tag:v", "hvc1", str(src)],
        check=True,
    )  # fmt: skip
    asset, probed = pipeline.probed(src)
    assert (probed.asset_updates["facts"].video_codec, probed.asset_updates["facts"].pix_fmt) == (
        "hevc",
        "yuv420p10le",
    )
    # When proxy runs
    path = pipeline.fetch(only(pipeline.run("proxy", asset), "proxy"))
    # Then it is 8-bit H.264 at 1280x720
    v = streams(path, "video")[0]
    assert (v["codec_name"], v["pix_fmt"], v["width"], v["height"]) == ("h264", "yuv420p", 1280, 720)
    assert_plays_to_the_end(path, src)


def test_proxy_normalises_a_variable_frame_rate(pipeline: Pipeline, tmp_path: Path) -> None:
    # Given a clip whose frames come at uneven intervals (the second half twice as fast)
    src = tmp_path / "vfr.mp4"
    subprocess.run(
        [*FF, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
         "-vf", "settb=1/1000,setpts='if(lt(N,25),N,25+(N-25)/2)/25/TB'", "-fps_mode", "vfr",
         "-enc_time_base", "1/1000", "-c:v", "libx264", "-preset", "ultrafast", str(src)],
        check=True,
    )  # fmt: skip
    assert max(frame_intervals(src)) - min(frame_intervals(src)) > 0.01
    asset, _ = pipeline.probed(src)
    # When proxy runs
    path = pipeline.fetch(only(pipeline.run("proxy", asset), "proxy"))
    # Then every frame lasts the same
    intervals = frame_intervals(path)
    assert max(intervals) - min(intervals) < 0.002
    assert_plays_to_the_end(path, src)


def test_proxy_of_audio_is_aac_in_m4a(pipeline: Pipeline, media: dict[str, Path]) -> None:
    asset, _ = pipeline.probed(media["tone"])
    d = only(pipeline.run("proxy", asset), "proxy")
    assert d.content_type == "audio/mp4" and d.key.endswith(".m4a")
    path = pipeline.fetch(d)
    assert streams(path, "video") == []
    assert streams(path, "audio")[0]["codec_name"] == "aac"
    assert_plays_to_the_end(path, media["tone"])


def test_proxy_of_an_image_is_webp_or_jpeg(
    pipeline: Pipeline, media: dict[str, Path], tmp_path: Path
) -> None:
    # Given a 2400x1200 image (over the 2048 px long side)
    src = mediagen.image(tmp_path / "wide.png", size="2400x1200")
    asset, _ = pipeline.probed(src)
    d = only(pipeline.run("proxy", asset), "proxy")
    expected = ("webp", "image/webp") if ffmpeg.has_encoder("libwebp") else ("mjpeg", "image/jpeg")
    path = pipeline.fetch(d)
    assert (streams(path, "video")[0]["codec_name"], d.content_type) == expected
    assert image_size(path) == (d.width, d.height) == (2048, 1024)


def test_proxy_run_twice_leaves_one_result(pipeline: Pipeline, media: dict[str, Path]) -> None:
    asset, _ = pipeline.probed(media["odd"])
    first, second = pipeline.run("proxy", asset), pipeline.run("proxy", asset)
    assert only(first, "proxy").key == only(second, "proxy").key
    assert pipeline.blobs.list_keys(asset_prefixes(asset)[1]) == [only(first, "proxy").key]


# ---------------------------------------------------------------- preview


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    def secs(ts: str) -> float:
        h, m, s = ts.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    assert text.startswith("WEBVTT")
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(\S+)", text)
    return [(secs(a), secs(b), ref) for a, b, ref in cues]


def test_preview_of_a_video(pipeline: Pipeline, media: dict[str, Path]) -> None:
    # Given a probed 640x360 video
    src = media["talking"]
    asset, _ = pipeline.probed(src)
    # When preview runs
    result = pipeline.run("preview", asset)
    # Then a poster, ten 320 px thumbnails and a storyboard with its VTT come out
    assert sorted(result.replaced_kinds) == sorted(["poster", "thumbnail", "storyboard", "storyboard_vtt"])
    poster = only(result, "poster")
    assert image_size(pipeline.fetch(poster)) == (poster.width, poster.height) == (640, 360)
    thumbs = sorted((d for d in result.derivatives if d.kind == "thumbnail"), key=lambda d: d.index)
    assert [t.index for t in thumbs] == list(range(preview_step.THUMB_COUNT))
    assert {image_size(pipeline.fetch(t)) for t in thumbs} == {(320, 180)}
    assert len({hashlib.sha256(pipeline.fetch(t).read_bytes()).digest() for t in thumbs}) > 1  # not one frame

    sprite = only(result, "storyboard")
    sw, sh = image_size(pipeline.fetch(sprite))
    assert (sw, sh) == (sprite.width, sprite.height)
    assert sw % preview_step.TILE_W == 0 and sh % preview_step.TILE_H == 0

    vtt = only(result, "storyboard_vtt")
    assert vtt.content_type == "text/vtt"
    cues = parse_vtt(pipeline.fetch(vtt).read_text())
    total = duration(src)
    assert cues[0][0] == 0.0 and abs(cues[-1][1] - total) < 0.05
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cues))  # contiguous
    for _, _, ref in cues:
        name, xywh = ref.split("#xywh=")
        x, y, w, h = map(int, xywh.split(","))
        assert name == "storyboard.jpg" and (w, h) == (preview_step.TILE_W, preview_step.TILE_H)
        assert x + w <= sw and y + h <= sh


def test_preview_of_a_rotated_video_is_portrait(pipeline: Pipeline, media: dict[str, Path]) -> None:
    asset, _ = pipeline.probed(media["rotated"])
    result = pipeline.run("preview", asset)
    assert image_size(pipeline.fetch(only(result, "poster"))) == (240, 320)
    thumb = next(d for d in result.derivatives if d.kind == "thumbnail")
    assert image_size(pipeline.fetch(thumb)) == (240, 320)  # narrower than 320: never upscaled


def test_preview_of_audio_is_a_waveform_without_storyboard(
    pipeline: Pipeline, media: dict[str, Path]
) -> None:
    asset, _ = pipeline.probed(media["tone"])
    result = pipeline.run("preview", asset)
    kinds = sorted(d.kind for d in result.derivatives)
    assert kinds == ["poster", "thumbnail"]
    assert image_size(pipeline.fetch(only(result, "poster"))) == preview_step.WAVE_SIZE


def test_preview_of_an_image_is_poster_and_one_thumbnail(pipeline: Pipeline, media: dict[str, Path]) -> None:
    asset, _ = pipeline.probed(media["image"])
    result = pipeline.run("preview", asset)
    assert image_size(pipeline.fetch(only(result, "poster"))) == (800, 600)
    assert image_size(pipeline.fetch(only(result, "thumbnail"))) == (320, 240)


def test_steps_work_without_stored_facts(pipeline: Pipeline, media: dict[str, Path]) -> None:
    # Given an asset probe never ran on (a re-run, or a step run alone)
    asset = pipeline.asset_for(media["odd"])
    # When preview runs, it looks at the file itself
    result = pipeline.run("preview", asset)
    assert only(result, "poster").width == 320


# ---------------------------------------------------------------- registry


def test_registry_imports_steps_by_name() -> None:
    assert get_step("probe") is probe_step.run
    assert get_step("render") is render_step.run
    # The steps earlier releases queued by these names run the step they merged into.
    assert get_step("proxy") is render_step.run and get_step("preview") is render_step.run
    # Every step of the one registry (the spec) has a module with a callable run
    names = {s.name for s in STEPS}
    assert names >= {"fetch", "probe", "render", "transcription", "embedding"}
    assert all(callable(get_step(name)) for name in names)
    with pytest.raises(KeyError):
        get_step("no-such-step")


# ---------------------------------------------------------------- classification (ffprobe JSON -> facts)


def _stream(kind: str, codec: str, **extra: Any) -> dict[str, Any]:
    return {"codec_type": kind, "codec_name": codec, **extra}


@pytest.mark.parametrize(
    ("fmt", "streams_", "media_type"),
    [
        # An MP3 with cover art is audio, not a one-frame video
        (
            "mp3",
            [_stream("audio", "mp3"), _stream("video", "mjpeg", disposition={"attached_pic": 1})],
            "audio",
        ),
        ("png_pipe", [_stream("video", "png", width=10, height=10)], "image"),
        ("image2", [_stream("video", "mjpeg", width=10, height=10, nb_frames="1")], "image"),
        # Motion JPEG in AVI is video however its frames are coded
        ("avi", [_stream("video", "mjpeg", width=10, height=10, nb_frames="250")], "video"),
    ],
)
def test_classifies_media_type_from_streams(
    fmt: str, streams_: list[dict[str, Any]], media_type: str
) -> None:
    data = {"format": {"format_name": fmt, "duration": "10.0"}, "streams": streams_}
    assert probe.facts_from_ffprobe(data, Path("x")).media_type == media_type


def test_text_that_ffmpeg_renders_is_not_media() -> None:
    data = {"format": {"format_name": "tty"}, "streams": [_stream("video", "ansi", width=640, height=400)]}
    with pytest.raises(MediaError) as exc:
        probe.facts_from_ffprobe(data, Path("notes.txt"))
    assert exc.value.code == "unsupported_media"


def test_display_matrix_rotation_and_sample_aspect_give_display_size() -> None:
    # Given 720x576 anamorphic (16:15 pixels) rotated by a display matrix of -90 degrees
    video = _stream(
        "video", "h264", width=720, height=576, sample_aspect_ratio="16:15",
        side_data_list=[{"side_data_type": "Display Matrix", "rotation": -90}],
    )  # fmt: skip
    pf = probe.facts_from_ffprobe(
        {"format": {"format_name": "mov,mp4", "duration": "5"}, "streams": [video]}, Path("x")
    )
    # Then the display size is the rotated, square-pixel one
    assert (pf.width, pf.height, pf.facts.rotation) == (576, 768, 90)
