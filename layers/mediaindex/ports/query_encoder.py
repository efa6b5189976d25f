"""Query encoder port: embeds a search query with the same models the pipeline used, so query and
segment vectors share a space. In-process over the models (mediaindex.ml.query_encoder), or on AWS
through the encoder Lambda (mediaindex.adapters.aws.lambda_encoder)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

Vec = tuple[str, list[float]]  # (model id, L2-normalised vector)
ImageInput = bytes | Path


class QueryEncoder(ABC):
    """Each method returns None when its model is not available in this deployment."""

    @abstractmethod
    def visual_text(self, text: str) -> Vec | None:
        """Text into the CLIP space (search frames by words)."""

    @abstractmethod
    def transcript_text(self, text: str) -> Vec | None:
        """Text into the sentence-embedding space (search speech by meaning)."""

    @abstractmethod
    def visual_image(self, image: ImageInput) -> Vec | None:
        """An image into the CLIP space (search frames by example)."""

    def text_vectors(self, text: str, *, visual: bool, transcript: bool) -> tuple[Vec | None, Vec | None]:
        """A text query's (visual, transcript) vectors, each only where asked for. In process these
        are the two calls; a remote encoder answers both in one round trip."""
        return (
            self.visual_text(text) if visual else None,
            self.transcript_text(text) if transcript else None,
        )
