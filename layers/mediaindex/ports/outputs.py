"""What the pipeline made of an asset: derivatives (files in blob storage) and segments (the
searchable spans). They belong to the asset: every call names its tenant, and the outputs of
another tenant's asset read as empty and cannot be written."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mediaindex.domain.models import Derivative, Page, Segment


class OutputRepository(ABC):
    @abstractmethod
    def replace_derivatives(
        self, tenant_id: str, asset_id: str, kinds: list[str], derivatives: list[Derivative]
    ) -> None:
        """Replaces every derivative of `kinds` for the asset, so a re-run leaves one set.
        NotFoundError when the asset is gone."""

    @abstractmethod
    def list_derivatives(self, tenant_id: str, asset_id: str) -> list[Derivative]: ...

    @abstractmethod
    def replace_segments(self, tenant_id: str, asset_id: str, segments: list[Segment]) -> None:
        """Replaces all segments of the asset. NotFoundError when the asset is gone."""

    @abstractmethod
    def list_segments(
        self, tenant_id: str, asset_id: str, *, limit: int, cursor: str | None
    ) -> Page[Segment]:
        """In time order, paged by an opaque cursor."""
