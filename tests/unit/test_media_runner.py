"""The one ffmpeg/ffprobe runner: every input is opened with the protocol and demuxer allow-lists, so
playlists and concat lists that point at other files or URLs are refused, and real media still reads."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediaindex.domain.errors import MediaError
from mediaindex.media import ffmpeg, probe
from mediaindex.ml.clip import load_rgb, load_rgbs
from mediaindex.pipeline import audio_track, visual_plan
from mediaindex.pipeline.steps import embedding

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")), reason="needs ffmpeg and ffprobe"
)

# Test media are made with ffmpeg directly (lavfi sources, which the runner refuses by design).
FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
GUARD = ["-protocol_whitelist", "file,pipe", "-format_whitelist", ",".join(ffmpeg.DEMUXERS)]


def make(path: Path, *args: str) -> Path:
    subprocess.run([*FF, *args, str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("runner")
    return make(
        d / "clip.mp4",
        "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
    )  # fmt: skip


def guarded(cmd: list[str]) -> bool:
    """Whether every input of an ffmpeg/ffprobe command line has the allow-lists right before it."""
    if cmd[0] == ffmpeg.FFPROBE:
        return cmd[3 : 3 + len(GUARD)] == GUARD
    inputs = [i for i, a in enumerate(cmd) if a == "-i"]
    return all(cmd[i - len(GUARD) : i] == GUARD for i in inputs)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Every ffmpeg/ffprobe command line any module runs through subprocess.run."""
    calls: list[list[str]] = []
    real = subprocess.run

    def spy(cmd: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(cmd, list) and cmd and cmd[0] in (ffmpeg.FFMPEG, ffmpeg.FFPROBE):
            calls.append([str(c) for c in cmd])
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    yield calls


# ---------------------------------------------------------------- the allow-lists are always there


def test_command_lines_carry_the_allow_lists_before_every_input() -> None:
    cmd = ffmpeg.ffmpeg_command(["-i", "/a.mp4", "-i", "/b.wav", "-map", "0:v", "-map", "1:a", "/out.mp4"])
    assert cmd[:3] == ["ffmpeg", "-hide_banner", "-nostdin"]
    assert cmd.count("-protocol_whitelist") == 2 and guarded(cmd)
    assert guarded(ffmpeg.ffprobe_command(Path("/a.mp4")))
    # No playlist, list or generator demuxer is allowed
    assert not {"hls", "dash", "concat", "lavfi", "tty", "webm_dash_manifest", "sdp"} & set(ffmpeg.DEMUXERS)


def test_every_tool_run_of_the_steps_and_models_goes_through_the_guard(
    clip: Path, tmp_path: Path, recorded: list[list[str]]
) -> None:
    # When the probe, transcription, embedding and CLIP code paths run over a real clip
    pf = probe.describe(clip)
    probe.check_decodes(clip, pf)
    assert probe.media_duration(clip) == pytest.approx(2.0, abs=0.1)
    assert audio_track.extract(clip, tmp_path / "a.wav")
    assert embedding.detect_cuts(clip) is not None
    assert visual_plan.extract_keyframe(clip, 1.0, tmp_path / "k.jpg")
    assert load_rgb(tmp_path / "k.jpg", 16).shape == (16, 16, 3)
    # Then every ffmpeg and ffprobe command line had the allow-lists before each input
    assert {c[0] for c in recorded} == {"ffmpeg", "ffprobe"}
    assert [c for c in recorded if not guarded(c)] == []


# ---------------------------------------------------------------- keyframes decoded in one run


@pytest.fixture(scope="module")
def keyframes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """JPEG keyframes of a landscape and a portrait source, interleaved, and a PNG among them."""
    d = tmp_path_factory.mktemp("keyframes")
    make(d / "w%02d.jpg", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=4:duration=1", "-q:v", "3")
    make(d / "p%02d.jpg", "-f", "lavfi", "-i", "testsrc=size=240x320:rate=3:duration=1", "-q:v", "3")
    png = make(d / "still.png", "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1")
    wide, tall = sorted(d.glob("w*.jpg")), sorted(d.glob("p*.jpg"))
    return [wide[0], tall[0], png, wide[1], tall[1], wide[2], tall[2], wide[3]]


def test_jpeg_keyframes_decode_in_one_run_to_the_same_bytes(
    keyframes: list[Path], recorded: list[list[str]]
) -> None:
    # Given what each decodes to on its own (all different, so order is checked too)
    singles = [ffmpeg.decode_rgb_frame(p, 24) for p in keyframes]
    assert len(set(singles)) == len(singles)
    recorded.clear()
    # When they are decoded together
    frames = ffmpeg.decode_rgb_frames(keyframes, 24)
    # Then the frames are the same bytes in the same order, from one guarded run for the seven JPEGs
    # (read from stdin) and one for the PNG
    assert frames == singles
    assert len(recorded) == 2 and all(guarded(c) for c in recorded)
    assert [c[c.index("-i") + 1] for c in recorded] == ["-", str(keyframes[2])]
    assert load_rgbs(keyframes, 24).shape == (8, 24, 24, 3)


def test_a_jpeg_holding_a_thumbnail_is_decoded_on_its_own(
    keyframes: list[Path], tmp_path: Path, recorded: list[list[str]]
) -> None:
    # Given a JPEG that carries a second image in an application segment (as EXIF thumbnails do)
    main, thumb = keyframes[0].read_bytes(), keyframes[1].read_bytes()
    payload = b"thumbnail\x00" + thumb
    with_thumb = tmp_path / "with-thumbnail.jpg"
    with_thumb.write_bytes(
        main[:2] + b"\xff\xef" + (len(payload) + 2).to_bytes(2, "big") + payload + main[2:]
    )
    paths = [keyframes[3], with_thumb, keyframes[5]]
    singles = [ffmpeg.decode_rgb_frame(p, 16) for p in paths]
    recorded.clear()
    # When it is decoded among plain ones
    frames = ffmpeg.decode_rgb_frames(paths, 16)
    # Then each frame is its own file's, and the one with the thumbnail was read alone
    assert frames == singles
    assert [c[c.index("-i") + 1] for c in recorded] == ["-", str(with_thumb)]


def test_a_damaged_jpeg_among_keyframes_is_named_as_it_is_alone(
    keyframes: list[Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    with pytest.raises(MediaError, match=r"bad\.jpg") as alone:
        ffmpeg.decode_rgb_frame(bad, 16)
    with pytest.raises(MediaError, match=r"bad\.jpg") as among:
        ffmpeg.decode_rgb_frames([keyframes[0], bad, keyframes[1]], 16)
    assert among.value.code == alone.value.code


# ---------------------------------------------------------------- refusals


def test_a_concat_list_naming_another_file_is_refused(clip: Path, tmp_path: Path) -> None:
    # Given an ffconcat list next to a real clip, naming it relatively (what concat's safe mode allows)
    shutil.copy(clip, tmp_path / "other.mp4")
    listing = tmp_path / "upload.mp4"
    listing.write_text("ffconcat version 1.0\nfile 'other.mp4'\n")
    # Then neither ffprobe nor ffmpeg reads through it
    with pytest.raises(MediaError) as exc:
        probe.describe(listing)
    assert exc.value.code == "unsupported_media"
    with pytest.raises(MediaError):
        ffmpeg.run_ffmpeg(["-i", str(listing), "-f", "null", "-"], timeout_s=30)


@pytest.mark.parametrize("target", ["other.mp4", "http://127.0.0.1:9/other.mp4"])
def test_a_playlist_naming_another_file_or_a_url_is_refused(clip: Path, tmp_path: Path, target: str) -> None:
    shutil.copy(clip, tmp_path / "other.mp4")
    playlist = tmp_path / "upload.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n{target}\n#EXT-X-ENDLIST\n")
    with pytest.raises(MediaError) as exc:
        ffmpeg.ffprobe(playlist)
    assert exc.value.code == "unsupported_media"
    with pytest.raises(MediaError):
        ffmpeg.run_ffmpeg(["-i", str(playlist), "-f", "null", "-"], timeout_s=30)


@pytest.mark.parametrize(
    "source", ["http://127.0.0.1:9/clip.mp4", "concat:/a.mp4|/b.mp4", "data:video/mp4;base64,AAAA"]
)
def test_an_input_that_is_not_a_local_file_is_refused_before_running(
    source: str, recorded: list[list[str]]
) -> None:
    with pytest.raises(MediaError) as exc:
        ffmpeg.run_ffmpeg(["-i", source, "-f", "null", "-"], timeout_s=30)
    assert exc.value.code == "unsupported_media"
    with pytest.raises(MediaError):
        ffmpeg.ffprobe(Path(source))
    assert recorded == []


def test_decode_errors_still_map_to_media_codes(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)  # an MP4 signature, nothing after
    with pytest.raises(MediaError) as exc:
        ffmpeg.ffprobe(junk)
    assert exc.value.code == "media_corrupt"


# ---------------------------------------------------------------- real media still reads


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("a.mkv", ["-f", "lavfi", "-i", "testsrc=size=32x32:duration=0.5"]),
        ("a.webm", ["-f", "lavfi", "-i", "testsrc=size=32x32:duration=0.5", "-c:v", "libvpx"]),
        ("a.avi", ["-f", "lavfi", "-i", "testsrc=size=32x32:duration=0.5"]),
        ("a.ts", ["-f", "lavfi", "-i", "testsrc=size=32x32:duration=0.5"]),
        ("a.mov", ["-f", "lavfi", "-i", "testsrc=size=32x32:duration=0.5"]),
        ("a.wav", ["-f", "lavfi", "-i", "sine=duration=0.5"]),
        ("a.mp3", ["-f", "lavfi", "-i", "sine=duration=0.5"]),
        ("a.m4a", ["-f", "lavfi", "-i", "sine=duration=0.5"]),
        ("a.flac", ["-f", "lavfi", "-i", "sine=duration=0.5"]),
        ("a.ogg", ["-f", "lavfi", "-i", "sine=duration=0.5"]),
        ("a.png", ["-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1"]),
        ("a.jpg", ["-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1"]),
        ("a.gif", ["-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1"]),
        ("a.bmp", ["-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1"]),
        ("a.tiff", ["-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1"]),
    ],
)
def test_common_media_formats_are_on_the_demuxer_list(tmp_path: Path, name: str, args: list[str]) -> None:
    try:
        src = make(tmp_path / name, *args)
    except subprocess.CalledProcessError:
        pytest.skip(f"this ffmpeg cannot write {name}")
    pf = probe.describe(src)
    probe.check_decodes(src, pf)
    if pf.width:
        frame = np.frombuffer(ffmpeg.decode_rgb_frame(src, 8), dtype=np.uint8)
        assert frame.size == 8 * 8 * 3
