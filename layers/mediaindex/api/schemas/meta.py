"""The wire format of /v1/health, /v1/usage and /v1/capabilities."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mediaindex.api.schemas.quotas import QuotaUseOut


class Health(BaseModel):
    status: Literal["ok"] = Field(description="Always `ok` when the server answers.")
    version: str = Field(description="The server's version.", examples=["0.1.0"])
    runtime: str = Field(description="Which runtime serves: `local` or `aws`.", examples=["local"])


class Usage(BaseModel):
    asset_count: int = Field(description="Assets of this tenant, in every index.")
    assets_by_media_type: dict[str, int] = Field(
        description="Assets per media type (`video`, `audio`, `image`).", examples=[{"video": 3, "audio": 1}]
    )
    bytes_by_media_type: dict[str, int] = Field(description="Bytes of originals per media type.")
    original_bytes: int = Field(description="Bytes of all stored originals.")
    derivative_bytes: int = Field(description="Bytes of all derivatives (proxies, thumbnails, transcripts).")
    feature_runs: dict[str, int] = Field(
        description="How many times each feature has run for this tenant.", examples=[{"transcription": 4}]
    )
    quotas: list[QuotaUseOut] = Field(
        description="Each quota in force (GET /v1/quotas) with its use now; `limit` null: no limit."
    )


class Availability(BaseModel):
    available: bool = Field(description="Whether a search with this option can find anything here.")
    reason: str | None = Field(description="Why it cannot, when it cannot; null when it can.")


class SearchOptions(BaseModel):
    visual: Availability = Field(description="Search of frames by words or by image (CLIP).")
    transcription: Availability = Field(description="Search of what was said, by meaning.")


class Capabilities(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "search_options": {
                        "visual": {
                            "available": False,
                            "reason": "no CLIP model is configured (MEDIAINDEX_CLIP_MODEL_PATH)",
                        },
                        "transcription": {"available": True, "reason": None},
                    },
                    "features": ["proxy", "preview", "transcription", "embedding"],
                    "transcription_models": ["base", "tiny.en"],
                    "default_transcription_model": "base",
                    "version": "0.1.0",
                }
            ]
        }
    )

    search_options: SearchOptions = Field(
        description="Each `search_options` value of POST /v1/search, and whether it works on this server."
    )
    features: list[str] = Field(
        description="The features (pipeline outputs) this server runs on assets.",
        examples=[["proxy", "preview", "transcription", "embedding"]],
    )
    transcription_models: list[str] = Field(
        default_factory=list,
        description="The Whisper models an index may be re-indexed onto (POST /v1/indexes/{id}/reindex).",
        examples=[["base", "tiny.en"]],
    )
    default_transcription_model: str = Field(
        "", description="The Whisper model of an index that names none.", examples=["base"]
    )
    version: str = Field(description="The server's version.", examples=["0.1.0"])
