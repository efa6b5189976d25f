"""Step functions by name. Modules are imported on first use, so a media container never imports
the ML steps (torch, faster-whisper) and an ML container never needs ffmpeg's helpers."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping

from mediaindex.pipeline.context import StepContext, StepResult

StepFunction = Callable[[StepContext], StepResult]

# Step name -> the module whose `run(ctx) -> StepResult` implements it.
STEP_MODULES: dict[str, str] = {
    "fetch": "mediaindex.pipeline.steps.fetch",
    "probe": "mediaindex.pipeline.steps.probe",
    "proxy": "mediaindex.pipeline.steps.proxy",
    "preview": "mediaindex.pipeline.steps.preview",
    "transcription": "mediaindex.pipeline.steps.transcription",
    "embedding": "mediaindex.pipeline.steps.embedding",
}


def get_step(name: str) -> StepFunction:
    """The `run` function of step `name`. KeyError for a name no step has."""
    try:
        module_path = STEP_MODULES[name]
    except KeyError:
        raise KeyError(f"no pipeline step named {name!r}") from None
    fn: StepFunction = importlib.import_module(module_path).run
    return fn


class _LazySteps(Mapping[str, StepFunction]):
    """A read-only name -> function mapping that imports each step's module when it is looked up."""

    def __getitem__(self, name: str) -> StepFunction:
        return get_step(name)

    def __iter__(self) -> Iterator[str]:
        return iter(STEP_MODULES)

    def __len__(self) -> int:
        return len(STEP_MODULES)


STEP_FUNCTIONS: Mapping[str, StepFunction] = _LazySteps()
