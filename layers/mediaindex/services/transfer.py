"""Moving a tenant between runtimes (`mediaindex export` / `mediaindex import`), through the ports
only, so either end may be the local runtime or an AWS deployment.

What moves: the tenant's indexes, their settled assets (ready or failed: one awaiting its upload
has no bytes yet; an export while an asset is processing is refused, as it would arrive half
made), each asset's derivative rows, and every blob those rows name (the original and the derived
files). What does not: API keys and webhooks (secrets of the source: make new ones), task history,
usage counters (the stores rebuild them from the asset rows), and search documents and segments,
which the target's own models rebuild from the imported transcripts and originals.

The rebuild is the re-index path (services/reindex.py): after the rows are in, each index with
searchable assets starts a re-index onto its own transcription model, whose tasks (kind `reindex`)
re-run only the embedding step into a new generation and swap it in. Assets keep their feature
states (`ready` stays ready) and transcripts are kept as exported unless the target does not offer
the index's Whisper model (then the re-index uses the target's default and transcribes again).
Search answers for an index once its re-index has swapped; `mediaindex reindex NAME --status`
follows it.

Import refuses to overwrite: an index or asset id the target already holds is an error before
anything is written. It writes each asset's derived blobs, then its rows, then its original (on
AWS an original that lands for an asset without a row is deleted as unwanted by the upload-event
handler), and on any failure removes everything it wrote. A journal of what it is about to write
lets a later run clean up after an import that was killed outright, then start again.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaindex.domain.blob_keys import asset_prefixes
from mediaindex.domain.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import (
    Asset,
    AssetStatus,
    Derivative,
    Feature,
    FeatureStatus,
    Index,
    IndexModels,
    ReindexState,
    Tenant,
)
from mediaindex.domain.rules import index_name_key
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.keys import KeyRepository
from mediaindex.ports.outputs import OutputRepository
from mediaindex.services.reindex import ReindexService
from mediaindex.services.transfer_archive import (
    ASSETS,
    DERIVATIVES,
    INDEXES,
    ArchiveReader,
    ArchiveWriter,
    BlobEntry,
    Manifest,
    TenantRef,
)

log = logging.getLogger(__name__)
_PAGE = 100
_DEFAULT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class ExportReport:
    archive: Path
    manifest: Manifest
    skipped_awaiting_upload: list[str]  # asset ids with no upload yet: nothing to move
    missing_blobs: list[str]  # keys the rows name that the source no longer holds


@dataclass
class ImportReport:
    tenant: TenantRef
    remapped: bool  # the target tenant's id differs from the source's: tenant fields and keys rewritten
    indexes: int = 0
    assets: int = 0
    derivatives: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    # index id -> the generation its re-index builds, or why none started
    rebuilds: dict[str, int | str] = field(default_factory=dict)


def rekey(key: str, asset: Asset, tenant_id: str) -> str:
    """One of `asset`'s blob keys, moved to the tenant `tenant_id`. The layout is blob_keys' alone
    (and the asset's own `key_layout`): the key must lie under one of the prefixes the asset's
    objects can be under, and keeps what follows it. Checked for the same tenant too: the archive
    names the keys, and a key outside the asset's own prefixes (another tenant's original, say)
    would be read or overwritten through the imported asset."""
    moved = asset.model_copy(update={"tenant_id": tenant_id})
    for old, new in zip(asset_prefixes(asset), asset_prefixes(moved), strict=True):
        if key.startswith(old):
            return new + key[len(old) :]
    raise ConflictError(
        f"blob key {key!r} is not under asset {asset.id}'s prefixes: cannot move it to another tenant",
        code="blob_key_foreign",
    )


class _Journal:
    """What an import is about to write, one JSON line each, flushed before the write: an import
    killed outright leaves it behind, and the next run removes what it names before starting
    again. Every id and key in it was checked absent from the target first, so removing them
    never touches what was there before."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: list[tuple[str, str]] = []

    def previous(self) -> list[tuple[str, str]]:
        if self.path is None or not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                doc = json.loads(line)
                out.append((str(doc["kind"]), str(doc["id"])))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by the kill: its write never started
        return out

    def note(self, kind: str, ident: str) -> None:
        self.entries.append((kind, ident))
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps({"kind": kind, "id": ident}) + "\n")
                f.flush()

    def done(self) -> None:
        self.entries.clear()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class TransferService:
    def __init__(
        self,
        *,
        keys: KeyRepository,
        indexes: IndexRepository,
        assets: AssetRepository,
        outputs: OutputRepository,
        blobs: BlobStore,
        reindex: ReindexService,
        version: str,
    ) -> None:
        self._keys = keys
        self._indexes = indexes
        self._assets = assets
        self._outputs = outputs
        self._blobs = blobs
        self._reindex = reindex
        self._version = version

    # ---- export --------------------------------------------------------------------------------

    def export(self, tenant_name: str, dest: Path, *, index_refs: list[str] | None = None) -> ExportReport:
        """Writes the tenant's indexes (all, or those named by id or name) to `dest`, a new .tar."""
        writer = ArchiveWriter(dest)
        skipped: list[str] = []
        missing: list[str] = []
        try:
            tenant = self._tenant(tenant_name)
            chosen = self._chosen_indexes(tenant.id, index_refs or [])
            with tempfile.TemporaryDirectory(prefix="mi-export-blob-") as tmp:
                for index in chosen:
                    writer.add_entity(INDEXES, index.model_dump(mode="json"))
                    for asset in self._all_assets(tenant.id, index.id):
                        if asset.status == AssetStatus.AWAITING_UPLOAD:
                            skipped.append(asset.id)
                            continue
                        missing += self._export_asset(writer, asset, Path(tmp))
            manifest = writer.close(
                export_id=uuid.uuid4().hex,  # names this export's import journal
                version=self._version,
                tenant=TenantRef(id=tenant.id, name=tenant.name),
            )
        except BaseException:
            writer.abort()
            raise
        return ExportReport(dest, manifest, skipped, missing)

    def _tenant(self, name: str) -> Tenant:
        tenant = self._keys.get_tenant_by_name(name)
        if tenant is None:
            raise NotFoundError(f"no tenant named {name!r}", code="tenant_not_found", field="tenant")
        return tenant

    def _chosen_indexes(self, tenant_id: str, refs: list[str]) -> list[Index]:
        live = [i for i in self._all_indexes(tenant_id) if not i.deleting]
        chosen = live
        if refs:
            chosen = []
            for ref in refs:
                found = next(
                    (i for i in live if ref == i.id or index_name_key(ref) == index_name_key(i.name)), None
                )
                if found is None:
                    raise NotFoundError(
                        f"no index {ref!r} in this tenant", code="index_not_found", field="index"
                    )
                if found not in chosen:
                    chosen.append(found)
        for index in chosen:
            if index.reindex is not None and index.reindex.state == ReindexState.RUNNING:
                raise ConflictError(
                    f"index {index.name!r} is being re-indexed: export it once that ends",
                    code="reindex_running",
                )
        return chosen

    def _all_indexes(self, tenant_id: str) -> Iterator[Index]:
        cursor: str | None = None
        while True:
            page = self._indexes.list(tenant_id, limit=_PAGE, cursor=cursor)
            yield from page.data
            if not (cursor := page.next_cursor):
                return

    def _all_assets(self, tenant_id: str, index_id: str) -> Iterator[Asset]:
        cursor: str | None = None
        while True:
            page = self._assets.list(tenant_id, index_id=index_id, limit=_PAGE, cursor=cursor)
            yield from page.data
            if not (cursor := page.next_cursor):
                return

    def _export_asset(self, writer: ArchiveWriter, asset: Asset, tmp: Path) -> list[str]:
        """Adds the asset, its derivative rows and their blobs; returns the keys found missing."""
        if asset.status == AssetStatus.PROCESSING:
            raise ConflictError(
                f"asset {asset.id} ({asset.name!r}) is still processing: export once it is ready or failed",
                code="asset_processing",
            )
        derivatives = self._outputs.list_derivatives(asset.tenant_id, asset.id)
        wanted = [(d.key, "derived", d.content_type) for d in derivatives]
        if asset.upload is not None and asset.upload.completed:
            wanted.insert(0, (asset.upload.key, "original", asset.content_type or _DEFAULT_TYPE))
        missing = []
        for key, role, content_type in wanted:
            info = self._blobs.head(key)
            if info is None:
                # A dropped original (save_original=false) is expected; any other gap is reported.
                if role == "derived" or asset.save_original:
                    missing.append(key)
                continue
            path = tmp / "blob"
            self._blobs.download_file(key, path)
            try:
                writer.add_blob(key, asset.id, role, path, info.content_type or content_type)
            finally:
                path.unlink(missing_ok=True)
        writer.add_entity(ASSETS, asset.model_dump(mode="json"))
        for d in derivatives:
            writer.add_entity(DERIVATIVES, d.model_dump(mode="json"))
        return missing

    # ---- import --------------------------------------------------------------------------------

    def import_archive(
        self, source: Path, *, tenant_name: str | None = None, journal_dir: Path | None = None
    ) -> ImportReport:
        """Imports `source` into the tenant `tenant_name` (default: the exported tenant's name),
        created when new. `journal_dir`: where to note what is being written (see _Journal)."""
        with ArchiveReader(source) as archive:
            manifest = archive.manifest
            indexes = [Index.model_validate(doc) for doc in archive.entities(INDEXES)]
            asset_ids = [str(doc["id"]) for doc in archive.entities(ASSETS)]
            target, known = self._target_tenant(manifest.tenant, tenant_name or manifest.tenant.name)
            notes = _Journal(_journal_path(journal_dir, manifest.export_id, target.id))
            previous = notes.previous()
            if previous:
                log.warning("removing what an interrupted import left", extra={"entries": len(previous)})
                self._rollback(target.id, previous)
            notes.done()
            self._refuse_existing(target.id, indexes, asset_ids)
            self._refuse_foreign_keys(archive, manifest, target.id)
            if not known:
                target = self._create_tenant(target)
            report = ImportReport(
                tenant=TenantRef(id=target.id, name=target.name), remapped=target.id != manifest.tenant.id
            )
            try:
                self._write(archive, manifest, target.id, indexes, report, notes)
            except BaseException:
                self._rollback(target.id, notes.entries)
                notes.done()
                raise
        notes.done()
        for index in indexes:
            report.rebuilds[index.id] = self._rebuild(target.id, index)
        return report

    def _target_tenant(self, source: TenantRef, name: str) -> tuple[Tenant, bool]:
        """The tenant to import into, and whether it exists (it is made only once the import is
        known to go ahead). Moved under its own name, a tenant keeps its id (and so its keys as
        they were); a new name is a new tenant."""
        tenant = self._keys.get_tenant_by_name(name)
        if tenant is not None:
            return tenant, True
        return Tenant(id=source.id if name == source.name else new_id("ten"), name=name), False

    def _create_tenant(self, tenant: Tenant) -> Tenant:
        try:
            return self._keys.create_tenant(tenant)
        except ConflictError as e:  # made meanwhile by someone else: use it
            made = self._keys.get_tenant_by_name(tenant.name)
            if made is None:  # not the name: the archive's tenant id is another tenant's here
                raise ConflictError(
                    f"tenant id {tenant.id} belongs to another tenant in the target: import under "
                    "another --tenant name (a new name gets a new id)",
                    code="tenant_already_exists",
                ) from e
            return made

    def _refuse_existing(self, tenant_id: str, indexes: list[Index], asset_ids: list[str]) -> None:
        names = {index_name_key(i.name): i for i in self._all_indexes(tenant_id)}
        for index in indexes:
            if self._indexes.get(tenant_id, index.id) is not None:
                raise ConflictError(
                    f"index {index.id} ({index.name!r}) already exists in the target: import never "
                    "overwrites; delete it there first, or import under another --tenant",
                    code="index_already_exists",
                )
            clash = names.get(index_name_key(index.name))
            if clash is not None:
                raise ConflictError(
                    f"the target already has an index named {clash.name!r} ({clash.id}): rename one first",
                    code="index_name_already_exists",
                )
        for i in range(0, len(asset_ids), _PAGE):
            found = self._assets.get_many(tenant_id, asset_ids[i : i + _PAGE])
            if found:
                held = sorted(found)[0]
                raise ConflictError(f"asset {held} already exists in the target", code="asset_already_exists")

    @staticmethod
    def _refuse_foreign_keys(archive: ArchiveReader, manifest: Manifest, tenant_id: str) -> None:
        """Every key the import would write or point to, rekeyed once before anything is written:
        one outside its asset's own prefixes refuses the archive while the target is untouched."""
        assets = {a.id: a for a in (Asset.model_validate(doc) for doc in archive.entities(ASSETS))}
        for asset in assets.values():
            if asset.upload is not None:
                rekey(asset.upload.key, asset, tenant_id)
        for doc in archive.entities(DERIVATIVES):
            d = Derivative.model_validate(doc)
            if d.asset_id in assets:
                rekey(d.key, assets[d.asset_id], tenant_id)
        for entry in manifest.blobs:
            if entry.asset_id in assets:
                rekey(entry.key, assets[entry.asset_id], tenant_id)

    def _write(
        self,
        archive: ArchiveReader,
        manifest: Manifest,
        tenant_id: str,
        indexes: list[Index],
        report: ImportReport,
        notes: _Journal,
    ) -> None:
        for index in indexes:
            notes.note("index", index.id)
            fresh = index.model_copy(update={"tenant_id": tenant_id, "reindex": None, "asset_count": 0})
            self._indexes.create(fresh)
            report.indexes += 1
        blobs: dict[str, list[BlobEntry]] = {}
        for entry in manifest.blobs:
            blobs.setdefault(entry.asset_id, []).append(entry)
        derivatives: dict[str, list[Derivative]] = {}
        for doc in archive.entities(DERIVATIVES):
            d = Derivative.model_validate(doc)
            derivatives.setdefault(d.asset_id, []).append(d)
        with tempfile.TemporaryDirectory(prefix="mi-import-") as tmp:
            for doc in archive.entities(ASSETS):
                asset = Asset.model_validate(doc)
                mine = blobs.get(asset.id, [])
                # Derived files first, then the rows, then the original (see the module's doc).
                for entry in (b for b in mine if b.role != "original"):
                    self._put(archive, entry, rekey(entry.key, asset, tenant_id), Path(tmp), report, notes)
                moved = asset.model_copy(update={"tenant_id": tenant_id}, deep=True)
                if moved.upload is not None:
                    moved.upload.key = rekey(moved.upload.key, asset, tenant_id)
                notes.note("asset", asset.id)
                self._assets.create(moved)
                rows = [
                    d.model_copy(update={"key": rekey(d.key, asset, tenant_id)})
                    for d in derivatives.get(asset.id, [])
                ]
                if rows:
                    self._outputs.replace_derivatives(
                        tenant_id, asset.id, sorted({d.kind for d in rows}), rows
                    )
                report.assets += 1
                report.derivatives += len(rows)
                for entry in (b for b in mine if b.role == "original"):
                    self._put(archive, entry, rekey(entry.key, asset, tenant_id), Path(tmp), report, notes)

    def _put(
        self,
        archive: ArchiveReader,
        entry: BlobEntry,
        key: str,
        tmp: Path,
        report: ImportReport,
        notes: _Journal,
    ) -> None:
        path = tmp / "blob"
        archive.extract_blob(entry, path)  # checks the sha256 before a byte reaches the store
        try:
            notes.note("blob", key)
            self._blobs.put_file(key, path, entry.content_type)
        finally:
            path.unlink(missing_ok=True)
        report.blobs += 1
        report.blob_bytes += entry.size

    def _rollback(self, tenant_id: str, entries: list[tuple[str, str]]) -> None:
        """Removes what this import wrote: assets (with their rows), then indexes, then blobs."""
        order = {"asset": 0, "index": 1, "blob": 2}
        for kind, ident in sorted(entries, key=lambda e: order.get(e[0], 3)):
            try:
                if kind == "asset":
                    self._assets.delete(tenant_id, ident)
                elif kind == "index":
                    self._indexes.delete(tenant_id, ident)
                elif kind == "blob":
                    self._blobs.delete(ident)
            except Exception:
                log.exception("undoing an import step failed", extra={"kind": kind, "id": ident})

    def _rebuild(self, tenant_id: str, index: Index) -> int | str:
        """Starts the re-index that rebuilds the index's search documents (see the module's doc)."""
        searchable = any(
            (fs := a.features.get(Feature.EMBEDDING)) is not None and fs.state == FeatureStatus.COMPLETED
            for a in self._all_assets(tenant_id, index.id)
        )
        if not searchable:
            return "nothing to rebuild: no asset has a completed embedding"
        models = IndexModels(transcription=index.models.transcription)
        try:
            started = self._reindex.start(tenant_id, index.id, models)
        except ValidationError as e:
            if e.code != "model_not_available" or models.transcription is None:
                raise
            log.warning("the index's Whisper model is not offered here: it is transcribed again")
            started = self._reindex.start(tenant_id, index.id, IndexModels())
        assert started.reindex is not None  # start always leaves one, running or ended
        return started.reindex.generation


def _journal_path(journal_dir: Path | None, export_id: str, tenant_id: str) -> Path | None:
    """One journal per archive and target tenant."""
    return None if journal_dir is None else journal_dir / f"{export_id}-{tenant_id}.jsonl"


def report_json(report: ExportReport | ImportReport) -> dict[str, Any]:
    """What the CLI prints for a report."""
    if isinstance(report, ExportReport):
        m = report.manifest
        return {
            "archive": str(report.archive),
            "tenant": m.tenant.model_dump(),
            "export_id": m.export_id,
            "counts": m.counts,
            "skipped_awaiting_upload": report.skipped_awaiting_upload,
            "missing_blobs": report.missing_blobs,
        }
    return {
        "tenant": report.tenant.model_dump(),
        "remapped": report.remapped,
        "indexes": report.indexes,
        "assets": report.assets,
        "derivatives": report.derivatives,
        "blobs": report.blobs,
        "blob_bytes": report.blob_bytes,
        "rebuilds": report.rebuilds,
    }
