"""The export archive on its own: what a writer puts in comes back out byte for byte, and a reader
refuses, with one clear error, an archive that is truncated, altered, of another format or not an
archive at all; an export that fails leaves no file. And `rekey`: an asset's keys moved to another
tenant in either key layout, computed by blob_keys."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from mediaindex.domain.blob_keys import LAYOUT_HASHED, LAYOUT_TENANT_FIRST, derived_key, original_key
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import Asset
from mediaindex.services.transfer import rekey
from mediaindex.services.transfer_archive import (
    ASSETS,
    FORMAT,
    INDEXES,
    MANIFEST,
    ArchiveError,
    ArchiveReader,
    ArchiveWriter,
    TenantRef,
)

TENANT = TenantRef(id="ten_1", name="acme")


def _write(tmp_path: Path, payloads: dict[str, bytes]) -> Path:
    dest = tmp_path / "out.tar"
    writer = ArchiveWriter(dest)
    writer.add_entity(INDEXES, {"id": "idx_1", "name": "talks"})
    for key, data in payloads.items():
        src = tmp_path / "src"
        src.write_bytes(data)
        writer.add_blob(key, "ast_1", "derived", src, "application/octet-stream")
    writer.add_entity(ASSETS, {"id": "ast_1", "name": "a.mp4"})
    writer.close(export_id="exp_1", version="0.1.0", tenant=TENANT)
    return dest


def _rewrite(src: Path, dest: Path, change: dict[str, bytes | None]) -> None:
    """A copy of `src` with members replaced (bytes) or dropped (None)."""
    with tarfile.open(src) as old, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as new:
        for member in old.getmembers():
            f = old.extractfile(member)
            assert f is not None
            data = change.get(member.name, f.read())
            if data is None:
                continue
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))


def test_what_is_written_reads_back_byte_for_byte(tmp_path: Path) -> None:
    big = bytes(range(256)) * 9000  # over the reader's 1 MiB chunk
    archive = _write(tmp_path, {"derived/ten_1/ast_1/proxy.mp4": big, "derived/ten_1/ast_1/empty": b""})
    assert archive.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no part file left
    with ArchiveReader(archive) as reader:
        m = reader.manifest
        assert (m.format, m.export_id, m.tenant) == (FORMAT, "exp_1", TENANT)
        assert m.counts == {"indexes": 1, "assets": 1, "derivatives": 0, "blobs": 2, "blob_bytes": len(big)}
        assert list(reader.entities(INDEXES)) == [{"id": "idx_1", "name": "talks"}]
        assert list(reader.entities(ASSETS)) == [{"id": "ast_1", "name": "a.mp4"}]
        proxy = next(b for b in m.blobs if b.key.endswith("proxy.mp4"))
        assert proxy.sha256 == hashlib.sha256(big).hexdigest() and proxy.size == len(big)
        reader.extract_blob(proxy, tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == big


def test_an_existing_destination_is_never_overwritten(tmp_path: Path) -> None:
    dest = tmp_path / "out.tar"
    dest.write_bytes(b"keep me")
    with pytest.raises(ArchiveError) as refused:
        ArchiveWriter(dest)
    assert refused.value.code == "archive_exists" and dest.read_bytes() == b"keep me"


def test_an_aborted_export_leaves_no_file(tmp_path: Path) -> None:
    dest = tmp_path / "out.tar"
    writer = ArchiveWriter(dest)
    writer.add_entity(INDEXES, {"id": "idx_1"})
    writer.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cut_in", ["blobs/derived/ten_1/ast_1/proxy.mp4", ASSETS, MANIFEST])
def test_a_truncated_archive_is_refused(tmp_path: Path, cut_in: str) -> None:
    archive = _write(tmp_path, {"derived/ten_1/ast_1/proxy.mp4": b"x" * 50_000})
    with tarfile.open(archive) as tar:
        member = tar.getmember(cut_in)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[: member.offset_data + member.size // 2])
    with pytest.raises(ArchiveError) as refused:
        ArchiveReader(cut)
    assert refused.value.code == "archive_invalid" and "truncated" in refused.value.message


def test_a_blob_altered_after_export_is_refused_when_extracted(tmp_path: Path) -> None:
    archive = _write(tmp_path, {"derived/ten_1/ast_1/t.json": b'{"text": "hello"}'})
    bad = tmp_path / "bad.tar"
    _rewrite(archive, bad, {"blobs/derived/ten_1/ast_1/t.json": b'{"text": "HELLO"}'})
    with ArchiveReader(bad) as reader, pytest.raises(ArchiveError) as refused:
        reader.extract_blob(reader.manifest.blobs[0], tmp_path / "t.json")
    assert refused.value.code == "archive_blob_mismatch"


def test_a_blob_of_another_size_is_refused_at_open(tmp_path: Path) -> None:
    archive = _write(tmp_path, {"derived/ten_1/ast_1/t.json": b"12345"})
    bad = tmp_path / "bad.tar"
    _rewrite(archive, bad, {"blobs/derived/ten_1/ast_1/t.json": b"123"})
    with pytest.raises(ArchiveError, match="is 3 bytes, the manifest says 5"):
        ArchiveReader(bad)


def test_altered_rows_are_refused_at_open(tmp_path: Path) -> None:
    archive = _write(tmp_path, {})
    bad = tmp_path / "bad.tar"
    _rewrite(archive, bad, {ASSETS: b'{"id": "ast_2", "name": "a.mp4"}\n'})
    with pytest.raises(ArchiveError, match=r"assets.jsonl differs from the manifest"):
        ArchiveReader(bad)


def test_a_missing_member_is_refused_at_open(tmp_path: Path) -> None:
    archive = _write(tmp_path, {"derived/ten_1/ast_1/t.json": b"1"})
    bad = tmp_path / "bad.tar"
    _rewrite(archive, bad, {"blobs/derived/ten_1/ast_1/t.json": None})
    with pytest.raises(ArchiveError, match=r"lacks blobs/derived/ten_1/ast_1/t\.json"):
        ArchiveReader(bad)


def test_another_format_or_no_archive_is_refused(tmp_path: Path) -> None:
    archive = _write(tmp_path, {})
    with tarfile.open(archive) as tar:
        f = tar.extractfile(MANIFEST)
        assert f is not None
        manifest = json.loads(f.read())
    other = tmp_path / "other.tar"
    _rewrite(archive, other, {MANIFEST: json.dumps({**manifest, "format": "mediaindex-backup/1"}).encode()})
    with pytest.raises(ArchiveError, match="unknown export format 'mediaindex-backup/1'"):
        ArchiveReader(other)
    malformed = tmp_path / "malformed.tar"
    _rewrite(archive, malformed, {MANIFEST: json.dumps({"format": FORMAT}).encode()})
    with pytest.raises(ArchiveError, match=r"manifest\.json is malformed"):
        ArchiveReader(malformed)
    text = tmp_path / "notes.txt"
    text.write_text("not a tar")
    with pytest.raises(ArchiveError, match="is not a mediaindex export"):
        ArchiveReader(text)
    with pytest.raises(ArchiveError) as missing:
        ArchiveReader(tmp_path / "nowhere.tar")
    assert missing.value.code == "archive_not_found"


@pytest.mark.parametrize("layout", [LAYOUT_TENANT_FIRST, LAYOUT_HASHED])
def test_rekey_moves_an_assets_keys_to_another_tenant(layout: int) -> None:
    asset = Asset(id="ast_9", tenant_id="ten_old", index_id="idx_1", name="a.mp4", key_layout=layout)
    moved = asset.model_copy(update={"tenant_id": "ten_new"})
    original = original_key("ten_old", "ast_9", "mp4", layout)
    assert rekey(original, asset, "ten_new") == original_key("ten_new", "ast_9", "mp4", layout)
    derived = derived_key(asset, "keyframes/00001.jpg")
    assert rekey(derived, asset, "ten_new") == derived_key(moved, "keyframes/00001.jpg")
    assert rekey(original, asset, "ten_old") == original  # same tenant: as stored


@pytest.mark.parametrize("target", ["ten_new", "ten_old"])
def test_rekey_refuses_a_key_of_another_asset(target: str) -> None:
    # Into the asset's own tenant as well: an archive whose asset names another asset's (or
    # tenant's) key would otherwise import a handle on that object
    asset = Asset(id="ast_9", tenant_id="ten_old", index_id="idx_1", name="a.mp4")
    for other in (
        Asset(id="ast_8", tenant_id="ten_old", index_id="idx_1", name="b.mp4"),
        Asset(id="ast_7", tenant_id="ten_victim", index_id="idx_2", name="c.mp4"),
    ):
        with pytest.raises(ConflictError) as refused:
            rekey(derived_key(other, "proxy.mp4"), asset, target)
        assert refused.value.code == "blob_key_foreign"
        with pytest.raises(ConflictError):
            rekey(original_key(other.tenant_id, other.id, "mp4", other.key_layout), asset, target)
