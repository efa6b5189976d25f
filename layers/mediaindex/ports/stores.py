"""The metadata repositories of one runtime, as one typed value: each adapter package opens all
of them over one database (a SQLite file, a DynamoDB table) and the composition root hands each
service the ones it uses."""

from __future__ import annotations

from dataclasses import dataclass

from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.idempotency import IdempotencyRepository
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.keys import KeyRepository
from mediaindex.ports.outputs import OutputRepository
from mediaindex.ports.tasks import TaskRepository


@dataclass(frozen=True)
class MetadataStores:
    keys: KeyRepository
    indexes: IndexRepository
    assets: AssetRepository
    outputs: OutputRepository
    tasks: TaskRepository
    idempotency: IdempotencyRepository
