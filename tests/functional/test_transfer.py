"""`mediaindex export` / `import` end to end on real media: a spoken clip ingested by the local
runtime (proxy, preview, Whisper transcript, embeddings) is exported once, then imported into a
fresh local runtime (through the CLI) and into the AWS runtime under moto (under another tenant,
so every key and tenant field is rewritten). Rows and bytes arrive equal, and once the target's
own models have rebuilt the search documents, the spoken phrase finds the same asset at the same
second. A tampered, truncated or colliding import leaves nothing behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.compose import transfer_service
from mediaindex.bootstrap.local import build_local
from mediaindex.cli.app import main
from mediaindex.domain.blob_keys import LAYOUT_HASHED, original_key
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import Asset, Derivative, Index
from mediaindex.ports.blobs import BlobInfo
from mediaindex.services.transfer import TransferService
from tests import mediagen
from tests.apiclient import Api
from tests.aws_runtime import build_aws_test_services
from tests.functional.conftest import BASE_URL, make_settings

pytestmark = pytest.mark.slow

PHRASE = "the ferry leaves the harbour at seven in the morning"
QUERY = "when does the ferry leave the harbour"
ROOT = Path(__file__).resolve().parents[2]
FAST = {"whisper_model": "tiny.en"}  # the smallest model: the transfer is what is tested


@dataclass
class Source:
    """The exported tenant as the source held it, read before the export."""

    archive: Path
    tenant_id: str
    index: Index
    asset: Asset
    derivatives: list[Derivative]
    blobs: dict[str, str]  # key -> sha256
    transcript: str
    hit: dict[str, Any]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _service(runtime: Runtime) -> TransferService:
    return transfer_service(runtime)


def _api(runtime: Runtime, client: TestClient, tenant: str) -> Api:
    return Api(client, runtime.services.keys.create_key(tenant)[2])


def _transcript(api: Api, asset_id: str) -> str:
    resp = api.call("GET", f"/v1/assets/{asset_id}/transcript?format=txt")
    assert resp.status_code == 200, resp.text
    return resp.text


def _search(api: Api, index_id: str) -> dict[str, Any]:
    hits = api.ok("POST", "/v1/search", json={"index_id": index_id, "query_text": QUERY})["data"]
    assert hits, "the spoken phrase found nothing"
    return dict(hits[0])


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg and espeak-ng are needed")
    work = tmp_path_factory.mktemp("transfer-source")
    clip = mediagen.talking_video(work / "ferry.mp4", PHRASE, size="320x240")
    data_dir = work / "data"
    runtime = build_local(make_settings(data_dir, **FAST))
    try:
        with TestClient(build_app(runtime), base_url=BASE_URL) as client:
            api = _api(runtime, client, "acme")
            index = api.index("talks")
            made = api.upload(index["id"], "ferry.mp4", clip.read_bytes(), user_metadata={"topic": "boats"})
            assert runtime.executor is not None
            runtime.executor.pool.run_until_idle()
            tenant = runtime.stores.keys.get_tenant_by_name("acme")
            assert tenant is not None
            tenant_id = tenant.id
            asset = runtime.stores.assets.get(tenant_id, made["id"])
            assert asset is not None and asset.status == "ready", asset
            derivatives = runtime.stores.outputs.list_derivatives(tenant_id, asset.id)
            assert {"proxy", "transcript", "keyframe"} <= {d.kind for d in derivatives}
            assert asset.upload is not None
            keys = [asset.upload.key, *(d.key for d in derivatives)]
            blobs = {k: _sha(runtime.blobs.get_bytes(k)) for k in keys}
            stored = runtime.stores.indexes.get(tenant_id, index["id"])
            assert stored is not None
            transcript = _transcript(api, asset.id)
            assert "harbo" in transcript.lower(), transcript
            source = Source(
                archive=work / "acme.tar",
                tenant_id=tenant_id,
                index=stored,
                asset=asset,
                derivatives=derivatives,
                blobs=blobs,
                transcript=transcript,
                hit=_search(api, index["id"]),
            )
    finally:
        runtime.close()
    assert main(["--data-dir", str(data_dir), "export", "--tenant", "acme", str(source.archive)]) == 0
    return source


def _assert_moved(source: Source, target: Runtime, tenant_id: str) -> None:
    """The rows arrive equal but for the tenant, and every file byte for byte."""
    index = target.stores.indexes.get(tenant_id, source.index.id)
    assert index is not None
    assert (index.name, index.default_features, index.asset_count) == (
        source.index.name,
        source.index.default_features,
        1,
    )
    asset = target.stores.assets.get(tenant_id, source.asset.id)
    assert asset is not None
    same = {"tenant_id", "upload", "version", "updated_at"}
    assert asset.model_dump(exclude=same) == source.asset.model_dump(exclude=same)
    assert asset.user_metadata == {"topic": "boats"} and asset.status == "ready"
    derivatives = target.stores.outputs.list_derivatives(tenant_id, asset.id)
    assert len(derivatives) == len(source.derivatives)
    assert asset.upload is not None and source.asset.upload is not None
    pairs = [(asset.upload.key, source.asset.upload.key)]
    by_slot = {(d.kind, d.index): d for d in derivatives}
    for d in source.derivatives:
        moved = by_slot[(d.kind, d.index)]
        assert moved.model_dump(exclude={"key"}) == d.model_dump(exclude={"key"})
        pairs.append((moved.key, d.key))
    for new_key, old_key in pairs:
        assert _sha(target.blobs.get_bytes(new_key)) == source.blobs[old_key], new_key
        assert (tenant_id in new_key) and (source.tenant_id == tenant_id or source.tenant_id not in new_key)


def _rebuilt(source: Source, target: Runtime, tenant: str) -> None:
    """The target's models rebuild the search documents; the phrase finds the same second."""
    with TestClient(build_app(target), base_url=BASE_URL) as client:
        api = _api(target, client, tenant)
        assert _transcript(api, source.asset.id) == source.transcript
        assert target.executor is not None
        target.executor.pool.run_until_idle()
        index = api.ok("GET", f"/v1/indexes/{source.index.id}")
        assert index["reindex"]["state"] == "completed", index
        assert index["reindex"]["assets_done"] == 1
        hit = _search(api, source.index.id)
        assert hit["asset_id"] == source.asset.id
        assert (hit["start"], hit["end"]) == (source.hit["start"], source.hit["end"])
        assert hit["text"] == source.hit["text"]
        asset = api.ok("GET", f"/v1/assets/{source.asset.id}")
        assert asset["status"] == "ready"  # the rebuild leaves the asset's own states alone


def test_local_to_local_through_the_cli(
    source: Source, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target_dir = tmp_path / "target"
    assert main(["--data-dir", str(target_dir), "import", str(source.archive)]) == 0
    out = capsys.readouterr()
    assert '"remapped": false' in out.out and "keys create --tenant acme" in out.err
    target = build_local(make_settings(target_dir, **FAST))
    try:
        _assert_moved(source, target, source.tenant_id)  # the same tenant id: keys copied as they were
        _rebuilt(source, target, "acme")
    finally:
        target.close()


@pytest.mark.aws
def test_local_to_aws_under_another_tenant(source: Source, tmp_path: Path) -> None:
    target = build_aws_test_services(tmp_path, orchestrator="inprocess", **FAST)
    try:
        report = _service(target).import_archive(source.archive, tenant_name="globex")
        assert report.remapped and (report.indexes, report.assets) == (1, 1)
        assert report.rebuilds == {source.index.id: source.index.generations + 1}
        tenant = target.stores.keys.get_tenant_by_name("globex")
        assert tenant is not None and tenant.id == report.tenant.id != source.tenant_id
        _assert_moved(source, target, tenant.id)
        _rebuilt(source, target, "globex")
    finally:
        target.close()


def _nothing_left(data_dir: Path, tenant: str = "acme") -> None:
    runtime = build_local(make_settings(data_dir))
    try:
        found = runtime.stores.keys.get_tenant_by_name(tenant)
        if found is not None:
            assert runtime.stores.indexes.list(found.id, limit=10, cursor=None).data == []
        assert runtime.blobs.list_keys("") == []
    finally:
        runtime.close()


def _tampered(src: Path, dest: Path, victim: str) -> None:
    """A copy of the archive with one byte of one member changed (same size: only the hash tells)."""
    with tarfile.open(src) as old, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as new:
        for member in old.getmembers():
            f = old.extractfile(member)
            assert f is not None
            data = f.read()
            if member.name == victim:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            new.addfile(member, io.BytesIO(data))


def test_a_tampered_original_aborts_and_nothing_is_left(
    source: Source, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The original is the asset's last write: its check fails after the rows and derived files
    # went in, so all of that must be taken back.
    assert source.asset.upload is not None
    bad = tmp_path / "bad.tar"
    _tampered(source.archive, bad, "blobs/" + source.asset.upload.key)
    target_dir = tmp_path / "target"
    assert main(["--data-dir", str(target_dir), "import", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: archive_blob_mismatch: ")
    assert source.asset.upload.key in err[0]
    _nothing_left(target_dir)


def test_a_truncated_archive_is_refused_before_anything_is_written(
    source: Source, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tarfile.open(source.archive) as tar:
        cuts = [tar.getmember(name) for name in ("manifest.json", "assets.jsonl")]
    data = source.archive.read_bytes()
    for member in cuts:
        cut = tmp_path / f"cut-{member.name}.tar"
        cut.write_bytes(data[: member.offset_data + member.size // 2])
        target_dir = tmp_path / f"target-{member.name}"
        assert main(["--data-dir", str(target_dir), "import", str(cut)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: archive_invalid: ") and "truncated" in err, err
        _nothing_left(target_dir)


def test_an_index_that_exists_in_the_target_is_refused(source: Source, data_dir: Path) -> None:
    target = build_local(make_settings(data_dir))
    try:
        service = _service(target)
        first = service.import_archive(source.archive)
        keys = target.blobs.list_keys("")
        with pytest.raises(ConflictError) as refused:
            service.import_archive(source.archive)
        assert refused.value.code == "index_already_exists" and source.index.id in refused.value.message
        # The first import is untouched.
        assert target.blobs.list_keys("") == keys and len(keys) == first.blobs
        assert target.stores.assets.get(first.tenant.id, source.asset.id) is not None
    finally:
        target.close()


def test_export_refusals(source: Source, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    assert main(["--data-dir", str(data_dir), "export", "--tenant", "nobody", str(tmp_path / "x.tar")]) == 1
    assert capsys.readouterr().err.strip() == "error: tenant_not_found: no tenant named 'nobody'"
    assert not (tmp_path / "x.tar").exists()
    assert main(["--data-dir", str(data_dir), "import", str(source.archive)]) == 0
    capsys.readouterr()
    code = main(["--data-dir", str(data_dir), "export", "--tenant", "acme", str(source.archive)])
    assert code == 1 and "archive_exists" in capsys.readouterr().err
    # The import's search rebuild has not run (no worker here): an export now would carry it half done.
    code = main(["--data-dir", str(data_dir), "export", "--tenant", "acme", str(tmp_path / "y.tar")])
    assert code == 1 and "error: reindex_running: index 'talks'" in capsys.readouterr().err
    code = main(
        [
            "--data-dir",
            str(data_dir),
            "export",
            "--tenant",
            "acme",
            "--index",
            "nope",
            str(tmp_path / "y.tar"),
        ]
    )
    assert code == 1 and "index_not_found" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    code = main(["--data-dir", str(data_dir), "export", "--tenant", "acme", str(tmp_path / "file" / "z.tar")])
    assert code == 1 and capsys.readouterr().err == f"error: File exists: {tmp_path / 'file'}\n"
    assert not (tmp_path / "y.tar").exists()


_KILLED_IMPORT = """
import os, sys
from pathlib import Path
from mediaindex.adapters.local.fs_blobs import LocalBlobStore

put = LocalBlobStore.put_file
def dies_on_the_original(self, key, path, content_type):
    if key.startswith("originals/"):
        os._exit(9)  # killed outright: no rollback runs
    return put(self, key, path, content_type)
LocalBlobStore.put_file = dies_on_the_original
from mediaindex.cli.app import main
sys.exit(main(["--data-dir", sys.argv[1], "import", sys.argv[2]]))
"""


def test_an_import_killed_midway_is_cleaned_up_by_the_next_run(source: Source, data_dir: Path) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_IMPORT, str(data_dir), str(source.archive)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'layers'}:{ROOT}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == 9, killed.stderr
    journals = list((data_dir / "imports").iterdir())
    assert len(journals) == 1  # what it was writing when it died
    assert main(["--data-dir", str(data_dir), "import", str(source.archive)]) == 0
    assert list((data_dir / "imports").iterdir()) == []
    target = build_local(make_settings(data_dir))
    try:
        tenant = target.stores.keys.get_tenant_by_name("acme")
        assert tenant is not None
        _assert_moved(source, target, tenant.id)
        assert len(target.blobs.list_keys("")) == len(source.blobs)
    finally:
        target.close()


def _edited(src: Path, dest: Path, file: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """A copy of the archive with each document of one entity file changed, and the manifest's
    hash of that file made to match (an export of other rows, as a source could have written)."""
    with tarfile.open(src) as old, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as new:
        members = {m.name: m for m in old.getmembers()}

        def read(name: str) -> bytes:
            f = old.extractfile(members[name])
            assert f is not None
            return f.read()

        rows = b"".join(
            json.dumps(change(json.loads(line))).encode() + b"\n" for line in read(file).splitlines() if line
        )
        manifest = json.loads(read("manifest.json"))
        manifest["files"][file] = _sha(rows)
        for name, member in members.items():
            data = {file: rows, "manifest.json": json.dumps(manifest).encode()}.get(name) or read(name)
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))


def test_an_index_name_or_asset_the_target_holds_is_refused(source: Source, tmp_path: Path) -> None:
    other_id = {"id": new_id("idx")}
    renamed = tmp_path / "renamed.tar"  # another index id with the same name
    _edited(source.archive, renamed, "indexes.jsonl", lambda doc: {**doc, **other_id})
    both = tmp_path / "both.tar"  # another index id and name, the same asset
    _edited(source.archive, both, "indexes.jsonl", lambda doc: {**doc, **other_id, "name": "other"})
    target = build_local(make_settings(tmp_path / "data"))
    try:
        service = _service(target)
        first = service.import_archive(source.archive)
        keys = target.blobs.list_keys("")
        with pytest.raises(ConflictError) as refused:
            service.import_archive(renamed)
        assert refused.value.code == "index_name_already_exists" and "'talks'" in refused.value.message
        with pytest.raises(ConflictError) as refused:
            service.import_archive(both)
        assert refused.value.code == "asset_already_exists" and source.asset.id in refused.value.message
        assert target.stores.indexes.get(first.tenant.id, other_id["id"]) is None
        assert target.blobs.list_keys("") == keys
    finally:
        target.close()


def test_an_archive_that_names_another_tenants_file_is_refused_and_the_file_untouched(
    source: Source, tmp_path: Path
) -> None:
    # The archive's asset keeps its own tenant (an import into the same tenant rewrites no key)
    # but names the target's other tenant's original as its upload: a handle on someone else's file.
    target = build_local(make_settings(tmp_path / "data"))
    try:
        victim, _, _ = target.services.keys.create_key("victim")
        victim_key = original_key(victim.id, new_id("ast"), "mp4", LAYOUT_HASHED)
        target.blobs.put_bytes(victim_key, b"the victim's bytes", "video/mp4")
        grab = tmp_path / "grab.tar"

        def upload_is_victims(doc: dict[str, Any]) -> dict[str, Any]:
            return {**doc, "upload": {**doc["upload"], "key": victim_key}}

        _edited(source.archive, grab, "assets.jsonl", upload_is_victims)
        with pytest.raises(ConflictError) as refused:
            _service(target).import_archive(grab)
        assert refused.value.code == "blob_key_foreign" and victim_key in refused.value.message
        assert target.blobs.get_bytes(victim_key) == b"the victim's bytes"
        assert target.blobs.list_keys("") == [victim_key]  # the import left nothing of its own
        assert target.stores.keys.get_tenant_by_name("acme") is None
    finally:
        target.close()


def test_an_archive_whose_tenant_id_is_another_tenants_is_refused(source: Source, tmp_path: Path) -> None:
    target = build_local(make_settings(tmp_path / "data"))
    try:
        other, _, _ = target.services.keys.create_key("someone-else")
        taken = tmp_path / "taken.tar"
        with tarfile.open(source.archive) as old, tarfile.open(taken, "w", format=tarfile.PAX_FORMAT) as new:
            for member in old.getmembers():
                f = old.extractfile(member)
                assert f is not None
                data = f.read()
                if member.name == "manifest.json":
                    manifest = json.loads(data)
                    manifest["tenant"]["id"] = other.id  # under the archive's own name, "acme"
                    data = json.dumps(manifest).encode()
                    member.size = len(data)
                new.addfile(member, io.BytesIO(data))
        with pytest.raises(ConflictError) as refused:
            _service(target).import_archive(taken)
        assert refused.value.code == "tenant_already_exists" and other.id in refused.value.message
        assert target.stores.keys.get_tenant_by_name("acme") is None
        assert target.stores.indexes.list(other.id, limit=10, cursor=None).data == []
        assert target.blobs.list_keys("") == []
    finally:
        target.close()


def test_the_rebuild_uses_the_targets_model_when_the_indexs_is_not_offered(
    source: Source, tmp_path: Path
) -> None:
    pinned = tmp_path / "pinned.tar"
    _edited(source.archive, pinned, "indexes.jsonl", lambda doc: {**doc, "models": {"transcription": "nope"}})
    unsearchable = tmp_path / "unsearchable.tar"

    def embedding_failed(doc: dict[str, Any]) -> dict[str, Any]:
        doc["features"]["embedding"]["state"] = "failed"
        return doc

    _edited(source.archive, unsearchable, "assets.jsonl", embedding_failed)
    target = build_local(make_settings(tmp_path / "data", **FAST))
    try:
        service = _service(target)
        report = service.import_archive(pinned)
        assert report.rebuilds == {source.index.id: 2}
        index = target.stores.indexes.get(report.tenant.id, source.index.id)
        assert index is not None and index.reindex is not None
        assert index.reindex.models.transcription == "tiny.en"  # the target's default
    finally:
        target.close()
    other = build_local(make_settings(tmp_path / "other"))  # ids are unique across a SQLite store
    try:
        report = _service(other).import_archive(unsearchable)
        assert report.rebuilds == {source.index.id: "nothing to rebuild: no asset has a completed embedding"}
        index = other.stores.indexes.get(report.tenant.id, source.index.id)
        assert index is not None and index.reindex is None
    finally:
        other.close()


def test_a_store_failure_midway_is_undone_even_when_a_delete_fails(
    source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    put, delete = LocalBlobStore.put_file, LocalBlobStore.delete
    undeletable: list[str] = []

    def put_fails_on_the_original(self: LocalBlobStore, key: str, path: Path, content_type: str) -> BlobInfo:
        if key.startswith("originals/"):
            raise OSError(28, "No space left on device")
        return put(self, key, path, content_type)

    def first_delete_fails(self: LocalBlobStore, key: str) -> None:
        if not undeletable:
            undeletable.append(key)
            raise OSError(5, "Input/output error")
        delete(self, key)

    monkeypatch.setattr(LocalBlobStore, "put_file", put_fails_on_the_original)
    monkeypatch.setattr(LocalBlobStore, "delete", first_delete_fails)
    target = build_local(make_settings(tmp_path / "data"))
    try:
        with pytest.raises(OSError, match="No space left"):
            _service(target).import_archive(source.archive)
        tenant = target.stores.keys.get_tenant_by_name("acme")
        assert tenant is not None
        assert target.stores.indexes.get(tenant.id, source.index.id) is None
        assert target.stores.assets.get(tenant.id, source.asset.id) is None
        assert target.blobs.list_keys("") == undeletable  # the rest went; that one is logged
        assert "undoing an import step failed" in caplog.text
    finally:
        target.close()


def test_export_skips_uploads_never_made_and_refuses_a_processing_asset(tmp_path: Path) -> None:
    runtime = build_local(make_settings(tmp_path / "data"))
    try:
        with TestClient(build_app(runtime), base_url=BASE_URL) as client:
            api = _api(runtime, client, "acme")
            index = api.index("talks")
            waiting = api.ok(
                "POST",
                "/v1/assets",
                201,
                json={"index_id": index["id"], "name": "later.mp4", "size_bytes": 10},
            )["asset"]
            service = _service(runtime)
            report = service.export(
                "acme", tmp_path / "a.tar", index_refs=["TALKS"]
            )  # names as names compare
            assert report.skipped_awaiting_upload == [waiting["id"]]
            assert report.manifest.counts["indexes"] == 1 and report.manifest.counts["assets"] == 0
            busy = api.upload(index["id"], "busy.mp4", b"bytes that are never processed")
            with pytest.raises(ConflictError) as refused:
                service.export("acme", tmp_path / "b.tar")
            assert refused.value.code == "asset_processing" and busy["id"] in refused.value.message
            assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "data"]  # no part file left
    finally:
        runtime.close()


def test_a_file_missing_in_the_source_is_reported_and_the_rest_exported(
    source: Source, tmp_path: Path
) -> None:
    runtime = build_local(make_settings(tmp_path / "data", **FAST))
    try:
        service = _service(runtime)
        tenant_id = service.import_archive(source.archive).tenant.id
        assert runtime.executor is not None
        runtime.executor.pool.run_until_idle()  # the rebuild, so the index can be exported again
        keyframe = next(
            d.key
            for d in runtime.stores.outputs.list_derivatives(tenant_id, source.asset.id)
            if d.kind == "keyframe"
        )
        runtime.blobs.delete(keyframe)
        report = service.export("acme", tmp_path / "again.tar")
        assert report.missing_blobs == [keyframe]
        assert keyframe not in {b.key for b in report.manifest.blobs}
        assert report.manifest.counts["derivatives"] == len(source.derivatives)
    finally:
        runtime.close()
