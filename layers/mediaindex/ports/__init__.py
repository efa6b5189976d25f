"""Ports: the small abstract classes services talk to. Adapters implement them for each runtime."""

from mediaindex.ports.blobs import BlobInfo, BlobStore, SignedRequest
from mediaindex.ports.metadata import MetadataStore
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.search import SearchDoc, SearchFilter, SearchHit, SearchIndex

__all__ = [
    "BlobInfo",
    "BlobStore",
    "MetadataStore",
    "Orchestrator",
    "SearchDoc",
    "SearchFilter",
    "SearchHit",
    "SearchIndex",
    "SignedRequest",
]
