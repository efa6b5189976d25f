"""One decode gives what separate passes give.

- Shot detection and keyframes (`media.shots.scan`): the same cuts and segments, one keyframe per
  segment of the same size, taken near the same time and showing the same picture; and the
  embedding step stores exactly those.
- The render step: one ffmpeg run, one input, makes the proxy, the previews, and the shots and
  keyframes, equal (dimensions, counts, timestamps) to what a run for each part alone makes; the
  embedding step then reads its plan and keyframes without the original."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.domain.blob_keys import LAYOUT_TENANT_FIRST, original_key
from mediaindex.domain.errors import MediaError
from mediaindex.domain.models import Asset, Derivative, Feature, MediaType, UploadInfo
from mediaindex.media import ffmpeg, probe, shots
from mediaindex.ml.registry import ModelRegistry
from mediaindex.pipeline import visual_plan
from mediaindex.pipeline.context import StepContext
from mediaindex.pipeline.steps import embedding, render
from mediaindex.settings import Settings
from tests import mediagen

pytestmark = pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg")

COLORS = ["red", "green", "blue"]
FPS = 25.0  # scene_video's rate
SHOT_S = 11.0


@pytest.fixture(scope="module")
def shots_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Three shots longer than MAX_SEGMENT_S (each is split in two), wider than the keyframe size
    # (keyframes are scaled down).
    d = tmp_path_factory.mktemp("one-pass")
    return mediagen.scene_video(d / "shots.mp4", COLORS, seconds_each=SHOT_S, size="960x540")


def _size(jpeg: Path) -> tuple[int | None, int | None]:
    pf = probe.describe(jpeg)
    return pf.width, pf.height


def _mean_rgb(jpeg: Path) -> tuple[float, ...]:
    raw = ffmpeg.decode_rgb_frame(jpeg, 8)
    return tuple(sum(raw[c::3]) / (len(raw) / 3) for c in range(3))


def test_one_decode_gives_the_cuts_segments_and_keyframes_of_separate_passes(
    shots_video: Path, tmp_path: Path
) -> None:
    duration = probe.media_duration(shots_video)
    # Separate passes: a decode for the cuts, then a seek per segment for its keyframe
    cuts = embedding.detect_cuts(shots_video)
    assert cuts is not None
    separate = visual_plan.plan_segments(cuts, duration)
    seeked = []
    for i, (start, end) in enumerate(separate):
        dest = tmp_path / f"seek-{i}.jpg"
        assert visual_plan.extract_keyframe(shots_video, (start + end) / 2, dest)
        seeked.append(dest)
    # One pass
    found = shots.scan(shots_video, tmp_path / "candidates", duration_s=duration)
    assert found.cuts == cuts and len(found.cuts) == 2
    one_pass = visual_plan.plan_segments(found.cuts, duration)
    assert one_pass == separate and len(one_pass) == 2 * len(COLORS)
    picks = [shots.nearest(found.candidates, start, end) for start, end in one_pass]
    assert all(p is not None for p in picks)
    for (start, end), pick, seek in zip(one_pass, picks, seeked, strict=True):
        assert pick is not None
        # Inside its segment, within half a candidate interval (and a frame) of the middle
        assert start <= pick.time_s < end
        assert abs(pick.time_s - (start + end) / 2) <= shots.CANDIDATE_INTERVAL_S / 2 + 1 / FPS
        # The same size as the seeked keyframe (640 wide, aspect kept), and the same picture
        assert _size(pick.path) == _size(seek) == (640, 360)
        assert _mean_rgb(pick.path) == pytest.approx(_mean_rgb(seek), abs=6)


def test_candidates_are_spread_over_the_whole_video(shots_video: Path, tmp_path: Path) -> None:
    duration = probe.media_duration(shots_video)
    found = shots.scan(shots_video, tmp_path, duration_s=duration)
    times = [c.time_s for c in found.candidates]
    assert times[0] == 0.0 and times == sorted(times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert (
        min(gaps) >= shots.CANDIDATE_INTERVAL_S and max(gaps) <= shots.CANDIDATE_INTERVAL_S + 1 / FPS + 1e-6
    )
    assert times[-1] >= duration - shots.CANDIDATE_INTERVAL_S - 1 / FPS
    # Every candidate is a file of its own, in time order
    assert len({c.path for c in found.candidates}) == len(times)


def test_a_long_video_gets_a_longer_candidate_interval() -> None:
    assert shots.candidate_interval(60.0) == shots.CANDIDATE_INTERVAL_S
    four_hours = 4 * 3600.0
    assert shots.candidate_interval(four_hours) == four_hours / shots.MAX_CANDIDATES


def test_nearest_prefers_a_candidate_inside_the_segment() -> None:
    c = [shots.Candidate(t, Path(f"/{t}.jpg")) for t in (0.0, 0.5, 1.0, 4.0)]
    assert shots.nearest(c, 0.0, 2.0) == c[2]  # middle 1.0
    assert shots.nearest(c, 1.2, 3.0) == c[2]  # none inside: the nearest overall (1.0 beats 4.0)
    assert shots.nearest(c, 0.9, 8.0) == c[3]  # middle 4.45: 4.0 inside and nearest
    assert shots.nearest(c, 0.2, 0.9) == c[1]  # middle 0.55: 0.5, not 1.0 outside
    assert shots.nearest([], 0.0, 1.0) is None


def _ctx(
    tmp_path: Path,
    src: Path,
    media_type: MediaType,
    features: frozenset[Feature] = frozenset({Feature.EMBEDDING}),
    *,
    task_features: frozenset[Feature] | None = None,
    work: str = "work",
) -> StepContext:
    settings = Settings(data_dir=tmp_path / "data")
    blobs = LocalBlobStore(tmp_path / "blobs", "http://127.0.0.1:8000", b"k" * 32)
    key = original_key("ten", "ast1", src.suffix.lstrip("."), LAYOUT_TENANT_FIRST)
    blobs.put_file(key, src, "video/mp4")
    asset = Asset(
        id="ast1", tenant_id="ten", index_id="idx", name=src.name, media_type=media_type,
        upload=UploadInfo(key=key), duration_s=probe.media_duration(src),
    )  # fmt: skip
    workdir = tmp_path / work
    workdir.mkdir()
    return StepContext(
        asset=asset, blobs=blobs, workdir=workdir, settings=settings, models=ModelRegistry(settings),
        features=features, task_features=features if task_features is None else task_features,
    )  # fmt: skip


def test_the_embedding_step_stores_one_keyframe_per_segment(shots_video: Path, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, shots_video, MediaType.VIDEO)
    result = embedding.run(ctx)
    segs = result.segments or []
    cuts = embedding.detect_cuts(shots_video)
    assert cuts is not None
    assert [(s.start, s.end) for s in segs] == visual_plan.plan_segments(cuts, ctx.asset.duration_s or 0)
    assert [s.kind for s in segs] == ["shot"] * len(segs)
    assert [d.index for d in result.derivatives] == list(range(len(segs)))
    for seg, d in zip(segs, result.derivatives, strict=True):
        assert seg.keyframe_key == d.key
        stored = tmp_path / f"stored-{d.index}.jpg"
        ctx.blobs.download_file(d.key, stored)
        assert _size(stored) == (640, 360)
        # The colour of the shot the segment lies in
        expected = COLORS[int((seg.start + seg.end) / 2 // SHOT_S)]
        r, g, b = _mean_rgb(stored)
        assert {"red": r, "green": g, "blue": b}[expected] == max(r, g, b)


def test_a_video_that_does_not_decode_falls_back_to_windows_without_keyframes(tmp_path: Path) -> None:
    # Audio in a file the asset calls video: the scan finds no video stream, so no cuts and no
    # candidates; the per-segment seek finds no frame either.
    tone = mediagen.tone_audio(tmp_path / "tone.m4a", seconds=3.0)
    found = shots.scan(tone, tmp_path / "c", duration_s=3.0)
    assert found == shots.ShotScan(None, [])
    ctx = _ctx(tmp_path, tone, MediaType.VIDEO)
    result = embedding.run(ctx)
    assert [(s.kind, s.start, s.end, s.keyframe_key) for s in result.segments or []] == [
        ("window", 0.0, pytest.approx(3.0, abs=0.1), None)
    ]
    assert result.derivatives == []


def test_the_scan_is_capped_at_the_media_limit(shots_video: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as exc:
        shots.scan(shots_video, tmp_path, duration_s=5.0, max_duration_s=5.0)
    assert exc.value.code == "media_too_large"


def test_the_scan_runs_through_the_guarded_runner(
    shots_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real = subprocess.run

    def spy(cmd: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append([str(c) for c in cmd])
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    shots.scan(shots_video, tmp_path, duration_s=probe.media_duration(shots_video))
    scans = [c for c in calls if "-filter_complex" in c]
    assert len(scans) == 1  # one decode
    cmd = scans[0]
    inputs = [i for i, a in enumerate(cmd) if a == "-i"]
    guard = ffmpeg.input_guard()
    assert inputs and all(cmd[i - len(guard) : i] == guard for i in inputs)
    assert cmd[inputs[0] + 1] == str(shots_video)


def test_a_video_that_ends_early_gives_what_decodes(tmp_path: Path) -> None:
    # Matroska cut at 60 %: the first cut (2 s) and the frames before the end still decode
    whole = mediagen.scene_video(tmp_path / "v.mp4", COLORS, seconds_each=2.0)
    mkv = tmp_path / "v.mkv"
    subprocess.run([*mediagen.FFMPEG, "-i", str(whole), "-c", "copy", str(mkv)], check=True)
    cut = mediagen.truncated(mkv, tmp_path / "cut.mkv", keep_fraction=0.6)
    found = shots.scan(cut, tmp_path / "c", duration_s=6.0)
    assert found.cuts == [pytest.approx(2.0, abs=0.05)]
    times = [c.time_s for c in found.candidates]
    assert times and times[0] == 0.0 and 2.0 < times[-1] < 6.0 - shots.CANDIDATE_INTERVAL_S
    assert all(c.path.stat().st_size > 0 for c in found.candidates)


EVERYTHING = frozenset({Feature.PROXY, Feature.PREVIEW, Feature.TRANSCRIPTION, Feature.EMBEDDING})


def _by_kind(derivatives: list[Derivative]) -> dict[str, list[Derivative]]:
    out: dict[str, list[Derivative]] = {}
    for d in derivatives:
        out.setdefault(d.kind, []).append(d)
    return out


def _ffprobe_video(path: Path) -> tuple[str, int, int, float]:
    pf = probe.describe(path)
    return pf.facts.video_codec or "", pf.width or 0, pf.height or 0, pf.duration_s or 0.0


def test_the_render_step_decodes_once_for_every_part(shots_video: Path, tmp_path: Path) -> None:
    pf = probe.describe(shots_video)
    r = render.plan(shots_video, tmp_path, pf, with_proxy=True, with_preview=True, with_scan=True)
    assert r.args.count("-i") == 1 and r.args.count("-filter_complex") == 1
    # Every part's chains read the one input's video stream; the proxy's output is last (-fs)
    assert r.args[-1].endswith("proxy.mp4")
    assert r.proxy and r.preview and r.scan


def test_one_render_gives_what_each_part_alone_gives(shots_video: Path, tmp_path: Path) -> None:
    both = frozenset({Feature.PROXY, Feature.PREVIEW})
    one = render.run(_ctx(tmp_path / "one", shots_video, MediaType.VIDEO, both, task_features=EVERYTHING))
    proxy_alone = render.run(
        _ctx(tmp_path / "proxy", shots_video, MediaType.VIDEO, frozenset({Feature.PROXY}))
    )
    preview_alone = render.run(
        _ctx(tmp_path / "preview", shots_video, MediaType.VIDEO, frozenset({Feature.PREVIEW}))
    )
    together, apart = _by_kind(one.derivatives), _by_kind(proxy_alone.derivatives + preview_alone.derivatives)
    # The same products, keyframes and their plan aside (only a task that embeds gets them)
    assert {"keyframe", "visual_plan"} <= set(together)
    assert set(together) - {"keyframe", "visual_plan"} == set(apart)
    assert set(apart) == {"proxy", "poster", "thumbnail", "storyboard", "storyboard_vtt"}
    for kind in apart:
        assert [(d.width, d.height, d.index) for d in together[kind]] == [
            (d.width, d.height, d.index) for d in apart[kind]
        ], kind
    # The proxies: H.264 of the same size and length, by ffprobe
    one_proxy = tmp_path / "one-proxy.mp4"
    alone_proxy = tmp_path / "alone-proxy.mp4"
    blobs_one = LocalBlobStore(tmp_path / "one" / "blobs", "http://127.0.0.1:8000", b"k" * 32)
    blobs_alone = LocalBlobStore(tmp_path / "proxy" / "blobs", "http://127.0.0.1:8000", b"k" * 32)
    blobs_one.download_file(together["proxy"][0].key, one_proxy)
    blobs_alone.download_file(apart["proxy"][0].key, alone_proxy)
    codec, w, h, dur = _ffprobe_video(one_proxy)
    assert (codec, w, h) == _ffprobe_video(alone_proxy)[:3] == ("h264", 960, 540)
    assert dur == pytest.approx(_ffprobe_video(alone_proxy)[3], abs=0.05)
    assert len(together["thumbnail"]) == 10
    # The keyframes: one per segment at the cuts a decode of its own finds
    cuts = embedding.detect_cuts(shots_video)
    assert cuts is not None
    segments = visual_plan.plan_segments(cuts, probe.media_duration(shots_video))
    assert [d.index for d in together["keyframe"]] == list(range(len(segments)))
    stored = visual_plan.load(_ctx(tmp_path / "again", shots_video, MediaType.VIDEO).asset, blobs_one)
    assert stored is not None and stored.kind == "shot"
    assert [(s.start, s.end) for s in stored.segments] == segments
    owner = _ctx(tmp_path / "again2", shots_video, MediaType.VIDEO).asset
    assert [s.keyframe_key for s in stored.planned(owner)] == [d.key for d in together["keyframe"]]
    # The plan names its keyframes relative to the asset's folder: no tenant, no key layout in it
    raw = blobs_one.get_bytes(visual_plan.derived_key(owner, visual_plan.PLAN_NAME))
    assert owner.tenant_id.encode() not in raw and b"keyframes/00000.jpg" in raw
    moved = owner.model_copy(update={"tenant_id": "ten_moved", "key_layout": 2})
    assert [s.keyframe_key for s in stored.planned(moved)] == [
        visual_plan.derived_key(moved, f"keyframes/{i:05d}.jpg") for i in range(len(segments))
    ]


def test_embedding_reads_the_rendered_plan_without_the_original(shots_video: Path, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, shots_video, MediaType.VIDEO, frozenset({Feature.PREVIEW}), task_features=EVERYTHING)
    rendered = render.run(ctx)
    keyframes = [d.key for d in rendered.derivatives if d.kind == "keyframe"]
    assert keyframes
    # The original is gone: embedding must not need it
    assert ctx.asset.upload is not None
    ctx.blobs.delete(ctx.asset.upload.key)
    emb_ctx = _ctx(tmp_path, shots_video, MediaType.VIDEO, work="embed")
    emb_ctx.blobs.delete(ctx.asset.upload.key)
    result = embedding.run(emb_ctx)
    visual = [s for s in result.segments or [] if s.kind == "shot"]
    assert [s.keyframe_key for s in visual] == keyframes
    cuts = embedding.detect_cuts(shots_video)
    assert cuts is not None
    assert [(s.start, s.end) for s in visual] == visual_plan.plan_segments(
        cuts, probe.media_duration(shots_video)
    )
    # It made no keyframes of its own and replaces none of render's
    assert result.derivatives == [] and "keyframe" not in result.replaced_kinds


def test_render_makes_no_keyframes_for_a_task_that_does_not_embed(shots_video: Path, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, shots_video, MediaType.VIDEO, frozenset({Feature.PREVIEW}))
    result = render.run(ctx)
    assert "keyframe" not in {d.kind for d in result.derivatives}
    assert visual_plan.load(ctx.asset, ctx.blobs) is None


def test_a_stored_plan_this_release_cannot_read_is_ignored(shots_video: Path, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, shots_video, MediaType.VIDEO)
    ctx.blobs.put_bytes(
        visual_plan.derived_key(ctx.asset, visual_plan.PLAN_NAME), b'{"version": 9}', "application/json"
    )
    assert visual_plan.load(ctx.asset, ctx.blobs) is None
    # and embedding scans the original itself
    result = embedding.run(ctx)
    assert len([d for d in result.derivatives if d.kind == "keyframe"]) == 2 * len(COLORS)
