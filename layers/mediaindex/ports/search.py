"""Search index port: segments with their text and vectors, queried inside one tenant and index."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SearchDoc:
    segment_id: str
    tenant_id: str
    index_id: str
    asset_id: str
    media_type: str
    start: float
    end: float
    text: str | None = None
    keyframe_key: str | None = None
    user_metadata: dict[str, Any] = field(default_factory=dict)
    # modality ("visual" | "transcription") -> (model_id, vector); vectors are L2-normalised.
    vectors: dict[str, tuple[str, list[float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchFilter:
    tenant_id: str
    index_id: str
    media_type: str | None = None
    user_metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchHit:
    segment_id: str
    asset_id: str
    start: float
    end: float
    score: float
    text: str | None = None
    keyframe_key: str | None = None


class SearchIndex(ABC):
    @abstractmethod
    def upsert(self, docs: list[SearchDoc]) -> None:
        """Writes docs; a doc with an existing segment_id replaces it."""

    @abstractmethod
    def delete_asset(self, tenant_id: str, asset_id: str, *, index_id: str | None = None) -> None:
        """Removes the asset's docs: under one index key (a generation, domain.search.search_key)
        when `index_id` is given, else under every key."""

    @abstractmethod
    def delete_index(self, tenant_id: str, index_id: str) -> None: ...

    def make_visible(self, index_id: str) -> None:
        """Makes every document written under `index_id` searchable now (a re-index calls it before
        swapping onto that key). A backend whose writes are searchable at once has nothing to do."""
        return None

    @abstractmethod
    def knn(
        self, flt: SearchFilter, *, modality: str, model_id: str, vector: list[float], k: int
    ) -> list[SearchHit]:
        """Nearest segments by cosine similarity, the filter applied inside the query."""

    @abstractmethod
    def text(self, flt: SearchFilter, *, query: str, k: int) -> list[SearchHit]:
        """Full-text (BM25) over transcript text, the filter applied inside the query."""
