"""Ports: the small abstract classes services talk to. Adapters implement them for each runtime."""

from mediaindex.ports.assets import AssetFn, AssetRepository, next_asset
from mediaindex.ports.blobs import BlobInfo, BlobStore, SignedRequest
from mediaindex.ports.idempotency import IdempotencyRepository
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.keys import KeyRepository
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.outputs import OutputRepository
from mediaindex.ports.search import SearchDoc, SearchFilter, SearchHit, SearchIndex
from mediaindex.ports.stores import MetadataStores
from mediaindex.ports.tasks import TaskAssetFn, TaskRepository, next_task

__all__ = [
    "AssetFn",
    "AssetRepository",
    "BlobInfo",
    "BlobStore",
    "IdempotencyRepository",
    "IndexRepository",
    "KeyRepository",
    "MetadataStores",
    "Orchestrator",
    "OutputRepository",
    "SearchDoc",
    "SearchFilter",
    "SearchHit",
    "SearchIndex",
    "SignedRequest",
    "TaskAssetFn",
    "TaskRepository",
    "next_asset",
    "next_task",
]
