"""The pipeline as data. The local executor walks it; infra turns it into the Step Functions state
machine and the Batch job definitions. Change a step here and both runtimes follow."""

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


STEPS: tuple[StepSpec, ...] = (
    StepSpec("fetch", (), (), "cpu", 900, 3, "media", "download asset_url into storage (URL assets only)"),
    StepSpec("probe", ("fetch",), (), "cpu", 300, 2, "media", "ffprobe facts, sha256, what applies"),
    StepSpec("proxy", ("probe",), (Feature.PROXY,), "cpu", 3600, 3, "media", "H.264/AAC, AAC or WebP proxy"),
    StepSpec(
        "preview", ("probe",), (Feature.PREVIEW,), "cpu", 1800, 3, "media", "poster, thumbnails, storyboard"
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
    ),
    StepSpec(
        "embedding",
        ("probe", "transcription"),
        (Feature.EMBEDDING,),
        "gpu",
        3600,
        3,
        "ml",
        "segments, keyframes, CLIP and text vectors, written to the search index",
    ),
)

STEP_BY_NAME = {s.name: s for s in STEPS}
STEP_FOR_FEATURE = {f: s for s in STEPS for f in s.features}
SHARED_STEPS = tuple(s for s in STEPS if not s.features)


def steps_for(features: list[Feature], *, needs_fetch: bool) -> list[StepSpec]:
    """The steps a task runs, in an order that respects `needs`. A step whose prerequisite is not
    part of this task simply runs on what an earlier task left (a re-run of embedding reuses the
    stored transcript)."""
    wanted = {STEP_FOR_FEATURE[f].name for f in features}
    out = [s for s in STEPS if not s.features and (s.name != "fetch" or needs_fetch)]
    out += [s for s in STEPS if s.name in wanted]
    return out
