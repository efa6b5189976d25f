"""The `render` step: one decode of the original feeds everything made from its pictures and sound.

One ffmpeg run reads each input stream once and hands the decoded frames to every part that
wants them (each part's filter chains start at `[0:V:0]` or `[0:a:0]`):
- the proxy (feature `proxy`; steps/proxy.py),
- the poster, thumbnails and storyboard, or an audio waveform (feature `preview`; steps/preview.py),
- for a video whose task also embeds, the shot cuts and keyframe candidates (media/shots.py), from
  which the visual segments and their keyframes are planned and stored (pipeline/visual_plan.py)
  for the embedding step, which then needs neither the original nor a decode of its own.

Earlier releases ran the proxy and the previews as separate steps, each decoding the original (and
embedding a third time): for a 60 s 720p clip their CPU time was 7-14 % above this one run's
(bench/media_bench.py `one_decode` prints both)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mediaindex.domain.blob_keys import derived_key
from mediaindex.domain.models import Derivative, Feature, MediaType
from mediaindex.media import ffmpeg, probe, shots
from mediaindex.media.probe import ProbeFacts
from mediaindex.pipeline import visual_plan
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.spec import STEP_BY_NAME
from mediaindex.pipeline.steps import preview, proxy


@dataclass(frozen=True)
class RenderPlan:
    args: list[str]
    proxy: proxy.ProxyPlan | None
    preview: preview.PreviewPlan | None
    scan: shots.ScanPart | None


def plan(
    src: Path, out_dir: Path, pf: ProbeFacts, *, with_proxy: bool, with_preview: bool, with_scan: bool
) -> RenderPlan:
    """The one run's arguments. The proxy's output comes last: `-fs` applies to the last output."""
    p = proxy.plan(out_dir / "proxy", pf) if with_proxy else None
    v = preview.plan(out_dir / "preview", pf) if with_preview else None
    scan = None
    if with_scan and pf.media_type == MediaType.VIDEO:
        interval = shots.candidate_interval(pf.duration_s or 0.0)
        scan = shots.scan_part(out_dir / "candidates", interval_s=interval, label="shot_candidates")
    for d in (out_dir / "proxy", out_dir / "preview", out_dir / "candidates"):
        d.mkdir(parents=True, exist_ok=True)
    graphs = [g for g in (v.graph if v else "", scan.graph if scan else "", p.graph if p else "") if g]
    # Pictures from keyframes alone where only long-video previews are made from this decode.
    args = (
        ["-skip_frame", "nokey"] if v is not None and v.keyframes_only and p is None and scan is None else []
    )
    args += ["-i", str(src)]
    if graphs:
        args += ["-filter_complex", ";".join(graphs)]
    args += [*(v.args if v else []), *(scan.outputs if scan else []), *(p.outputs if p else [])]
    return RenderPlan(args, p, v, scan)


def run(ctx: StepContext) -> StepResult:
    src = ctx.original_path()
    pf = probe.facts_for(ctx.asset, src)
    with_proxy = Feature.PROXY in ctx.features
    with_preview = Feature.PREVIEW in ctx.features
    with_scan = Feature.EMBEDDING in ctx.task_features and pf.media_type == MediaType.VIDEO
    r = plan(
        src, ctx.workdir / "render", pf, with_proxy=with_proxy, with_preview=with_preview, with_scan=with_scan
    )
    max_s = ctx.settings.max_duration_s
    # Capped on what is decoded: a header that claims less than the file holds cannot make this run
    # (and its temp output) longer than the media limit.
    out = ffmpeg.run_ffmpeg(
        r.args,
        timeout_s=float(STEP_BY_NAME["render"].timeout_s),
        loglevel="info" if r.scan else "error",  # the scan reads showinfo's lines
        max_duration_s=None if pf.media_type == MediaType.IMAGE else max_s,
        max_output_bytes=proxy.output_cap(pf, max_s) if r.proxy else None,
    )

    derivatives: list[Derivative] = []
    replaced: list[str] = []
    if r.proxy is not None:
        info = ctx.blobs.put_file(
            derived_key(ctx.asset, r.proxy.output.name), r.proxy.output, r.proxy.content_type
        )
        timed = pf.media_type != MediaType.IMAGE
        derivatives.append(proxy.derivative(ctx.asset, r.proxy, info.key, info.size, timed=timed))
        replaced.append("proxy")
    if r.preview is not None:
        derivatives += preview.store(ctx.asset, ctx.blobs, r.preview)
        replaced += preview.REPLACED_KINDS
    if r.scan is not None:
        duration = pf.duration_s or 0.0
        kind, segs = visual_plan.segments_from_scan(
            shots.read_scan(r.scan, out.stderr, out.returncode), duration
        )
        derivatives += visual_plan.store_keyframes(ctx.asset, ctx.blobs, segs, src, ctx.workdir)
        # Written after its keyframes: a plan that can be read names only stored keyframes.
        derivatives.append(visual_plan.save(ctx.asset, ctx.blobs, kind, duration, segs))
        replaced += ["keyframe", visual_plan.PLAN_KIND]
    return StepResult(derivatives=derivatives, replaced_kinds=replaced)
