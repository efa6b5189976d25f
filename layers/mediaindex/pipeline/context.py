"""What a step function receives and returns. Steps are plain functions over
(asset, inputs in blob storage) -> outputs in blob storage + a StepResult; they never touch the
metadata store, so the same function runs in the local pool and in a Batch container."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediaindex.domain.models import Asset, Derivative, Feature, FeatureState, Segment
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.search import SearchDoc
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.ml.registry import ModelRegistry


@dataclass
class StepContext:
    asset: Asset
    blobs: BlobStore
    workdir: Path  # scratch space, removed after the step
    settings: Settings
    models: ModelRegistry
    _original: Path | None = None

    def original_path(self) -> Path:
        """The original, downloaded once into the workdir."""
        if self._original is None:
            assert self.asset.upload is not None, "asset has no stored original"
            dest = self.workdir / ("original" + Path(self.asset.upload.key).suffix)
            self.blobs.download_file(self.asset.upload.key, dest)
            self._original = dest
        return self._original


@dataclass
class StepResult:
    # Feature states the step settles itself (e.g. `na` with a reason). Features it serves that are
    # not named here end `completed`.
    feature_states: dict[Feature, FeatureState] = field(default_factory=dict)
    # Derivatives it made; every existing derivative of `replaced_kinds` is replaced by these.
    derivatives: list[Derivative] = field(default_factory=list)
    replaced_kinds: list[str] = field(default_factory=list)
    # Canonical segments (embedding) and the documents to write to the search index.
    segments: list[Segment] | None = None
    search_docs: list[SearchDoc] | None = None
    # Facts to write onto the asset (probe): any Asset field name -> value.
    asset_updates: dict[str, Any] = field(default_factory=dict)
