"""Step functions by name, from the registry in mediaindex.pipeline.spec. Modules are imported on
first use, so a media container never imports the ML steps (torch, faster-whisper) and an ML
container never needs ffmpeg's helpers."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.spec import STEP_BY_NAME

StepFunction = Callable[[StepContext], StepResult]


def get_step(name: str) -> StepFunction:
    """The `run` function of step `name`. KeyError for a name no step has."""
    try:
        spec = STEP_BY_NAME[name]
    except KeyError:
        raise KeyError(f"no pipeline step named {name!r}") from None
    fn: StepFunction = importlib.import_module(f"{__name__}.{spec.module}").run
    return fn
