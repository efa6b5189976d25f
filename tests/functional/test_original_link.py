"""Steps read the one stored original: linked into each step's workdir where the blob store keeps
files on this machine, downloaded only where it does not."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.domain.blob_keys import LAYOUT_TENANT_FIRST, original_key
from mediaindex.domain.errors import NotFoundError
from mediaindex.domain.models import Asset, UploadInfo
from mediaindex.ml.registry import ModelRegistry
from mediaindex.pipeline.context import StepContext
from mediaindex.ports.blobs import BlobStore
from mediaindex.settings import Settings
from tests.functional.test_ml import MemoryBlobs

KEY = original_key("ten", "ast1", "mp4", LAYOUT_TENANT_FIRST)
DATA = b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096)


def _ctx(blobs: BlobStore, work: Path) -> StepContext:
    work.mkdir(parents=True, exist_ok=True)
    asset = Asset(id="ast1", tenant_id="ten", index_id="idx", name="a.mp4", upload=UploadInfo(key=KEY))
    settings = Settings(data_dir=work / "data")
    return StepContext(
        asset=asset, blobs=blobs, workdir=work, settings=settings, models=ModelRegistry(settings)
    )


def _local(root: Path) -> LocalBlobStore:
    blobs = LocalBlobStore(root, "http://127.0.0.1:8000", b"k" * 32)
    blobs.put_bytes(KEY, DATA, "video/mp4")
    return blobs


def test_every_step_of_a_task_reads_the_stored_file_without_a_copy(tmp_path: Path) -> None:
    blobs = _local(tmp_path / "blobs")
    paths = [_ctx(blobs, tmp_path / f"step{n}").original_path() for n in range(5)]
    stored = os.stat(paths[0])
    # One inode for all five steps: hard links, not copies
    assert {os.stat(p).st_ino for p in paths} == {stored.st_ino} and stored.st_nlink == 1 + 5
    assert all(p.read_bytes() == DATA and p.suffix == ".mp4" and not p.is_symlink() for p in paths)
    # The object replaced under a running step: the step keeps reading the version it started with
    blobs.put_bytes(KEY, b"new", "video/mp4")
    assert paths[0].read_bytes() == DATA


def test_on_another_file_system_the_step_gets_a_symbolic_link(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        blobs = _local(Path(other) / "blobs")
        path = _ctx(blobs, tmp_path / "step").original_path()
        assert path.is_symlink() and path.read_bytes() == DATA


def test_a_missing_original_is_not_found(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs", "http://127.0.0.1:8000", b"k" * 32)
    with pytest.raises(NotFoundError):
        _ctx(blobs, tmp_path / "step").original_path()


def test_a_remote_store_is_downloaded_once_per_step(tmp_path: Path) -> None:
    blobs = MemoryBlobs()  # keeps no file here, as S3: only download_file reaches the object
    blobs.put_bytes(KEY, DATA, "video/mp4")
    ctx = _ctx(blobs, tmp_path / "step")
    path = ctx.original_path()
    assert path.read_bytes() == DATA and not path.is_symlink() and os.stat(path).st_nlink == 1
    assert ctx.original_path() == path  # asked again: the same file, not a second download


def test_a_step_run_again_in_its_workdir_replaces_the_last_link(tmp_path: Path) -> None:
    blobs = _local(tmp_path / "blobs")
    first = _ctx(blobs, tmp_path / "step").original_path()
    blobs.put_bytes(KEY, b"replaced", "video/mp4")
    again = _ctx(blobs, tmp_path / "step").original_path()
    assert again == first and again.read_bytes() == b"replaced"
    assert sorted(p.name for p in again.parent.iterdir() if p.name.startswith(".")) == []
