"""What a step function receives and returns. Steps are plain functions over
(asset, inputs in blob storage) -> outputs in blob storage + a StepResult; they never touch the
metadata store, so the same function runs in the local pool and in a Batch container."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from mediaindex.domain.models import Asset, Derivative, Feature, FeatureState, Segment
from mediaindex.ports.blobs import BlobInfo, BlobStore
from mediaindex.ports.search import SearchDoc
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.ml.registry import ModelRegistry


@runtime_checkable
class _FileBacked(Protocol):
    """A blob store whose objects are files on this machine (the local one): `open_read` gives the
    open file, whose name is the object's path."""

    def open_read(self, key: str) -> tuple[IO[bytes], BlobInfo]: ...


def _link_stored(blobs: BlobStore, key: str, dest: Path) -> bool:
    """Links `dest` to the stored object instead of copying it: a hard link where both sit on one
    file system (it keeps this version even if the key is replaced), else a symbolic link. False
    when the store keeps no local file."""
    if not isinstance(blobs, _FileBacked):
        return False
    f, _ = blobs.open_read(key)  # NotFoundError when it is gone, as a download would raise
    with f:
        stored = os.path.abspath(f.name)
        # Made under a temporary name, then moved over `dest`: a step run again in the same
        # workdir replaces what the last run left, as a download does.
        tmp = dest.with_name(f".{dest.name}.{os.urandom(4).hex()}.link")
        try:
            os.link(stored, tmp)
        except OSError:  # another file system, or links refused there
            tmp.symlink_to(stored)
        os.replace(tmp, dest)
    return True


@dataclass
class StepContext:
    asset: Asset
    blobs: BlobStore
    workdir: Path  # scratch space, removed after the step
    settings: Settings
    models: ModelRegistry
    # The index generation this run writes search documents under (domain.search.search_key) and
    # the Whisper model it transcribes with (None: the deployment's); the runner sets both.
    search_index_id: str | None = None
    transcription_model: str | None = None
    # The features this run serves (its step's, still active in the task) and every feature the
    # task asked for: a step leaves out work no one wants (render finds shots only for embedding).
    features: frozenset[Feature] = frozenset()
    task_features: frozenset[Feature] = frozenset()
    _original: Path | None = None

    def original_path(self) -> Path:
        """The original in the workdir, for reading only: linked to the stored file where the blob
        store keeps one on this machine (every step of a task then reads the one stored copy), else
        downloaded once per step."""
        if self._original is None:
            assert self.asset.upload is not None, "asset has no stored original"
            dest = self.workdir / ("original" + Path(self.asset.upload.key).suffix)
            if not _link_stored(self.blobs, self.asset.upload.key, dest):
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
