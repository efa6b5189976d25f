"""The pipeline as data, and the one registry of its steps. The local executor walks it; infra turns
it into the Step Functions state machine and the Batch job definitions; `steps.get_step` imports the
module a spec names. Add a step here (and its module under steps/) and both runtimes follow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mediaindex.domain.models import Feature


@dataclass(frozen=True)
class StepSpec:
    name: str
    needs: tuple[str, ...]  # steps that must have finished first
    features: tuple[Feature, ...]  # features whose state this step settles ("" for shared steps)
    compute: Literal["cpu", "gpu"]
    timeout_s: int
    max_attempts: int
    # Which container image runs it on AWS (containers/<image>/).
    image: Literal["media", "ml"]
    description: str
    module: str  # the module under mediaindex.pipeline.steps whose `run(ctx)` implements it
    # Runs only for assets created from an asset_url (fetch); skipped for uploaded originals.
    url_sources_only: bool = False
    # Its failure is the media's fault (probe decides what a file is): the asset fails with it.
    judges_media: bool = False


STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        "fetch",
        (),
        (),
        "cpu",
        3600,  # an asset of max_asset_bytes (50 GiB) at 15 MB/s
        3,
        "media",
        "download asset_url into storage",
        "fetch",
        url_sources_only=True,
    ),
    StepSpec(
        "probe",
        ("fetch",),
        (),
        "cpu",
        1800,  # downloads and hashes the whole original: up to max_asset_bytes (50 GiB)
        2,
        "media",
        "ffprobe facts, sha256, what applies",
        "probe",
        judges_media=True,
    ),
    StepSpec(
        "transcription",
        ("probe",),
        (Feature.TRANSCRIPTION,),
        "gpu",
        3600,
        3,
        "ml",
        "faster-whisper transcript",
        "transcription",
    ),
    StepSpec(
        "render",
        ("probe",),
        (Feature.PROXY, Feature.PREVIEW),
        "cpu",
        18000,  # max_duration_s (4 h) of media encoded at real-time speed, plus an hour
        3,
        "media",
        "one decode: the proxy, poster, thumbnails and storyboard, and the shots and keyframes",
        "render",
    ),
    StepSpec(
        "embedding",
        # render's shots and keyframes, where this task runs it; else those an earlier task left
        # (or, for media rendered before shots were kept, a scan of its own).
        ("probe", "transcription", "render"),
        (Feature.EMBEDDING,),
        "gpu",
        3600,
        3,
        "ml",
        "segments, keyframes, CLIP and text vectors, written to the search index",
        "embedding",
    ),
)

# Steps of earlier releases, merged into one: a job or Batch execution queued before an upgrade
# names them. The first runs the merged step for every feature still active; the second then
# finds nothing left to do.
RETIRED_STEPS = {"proxy": "render", "preview": "render"}
STEP_BY_NAME = {s.name: s for s in STEPS}
STEP_BY_NAME.update({old: STEP_BY_NAME[new] for old, new in RETIRED_STEPS.items()})
STEP_FOR_FEATURE = {f: s for s in STEPS for f in s.features}


def steps_for(features: list[Feature], *, needs_fetch: bool) -> list[StepSpec]:
    """The steps a task runs, in an order that respects `needs`. A step whose prerequisite is not
    part of this task simply runs on what an earlier task left (a re-run of embedding reuses the
    stored transcript)."""
    wanted = {STEP_FOR_FEATURE[f].name for f in features}
    out = [s for s in STEPS if not s.features and (needs_fetch or not s.url_sources_only)]
    out += [s for s in STEPS if s.name in wanted]
    return out
