"""OpenSearch index layout for mediaindex: the names of indexes, aliases and fields, and the
create-index body (settings and mappings).

Each mediaindex index is one physical index per generation, `{prefix}-{index_id}-g{generation}`,
reached only through the alias `{prefix}-{index_id}`, so a new embedding model can be built beside
the old one and swapped in. Fields: `vec_<modality>` knn_vector (HNSW; engine `faiss` or `lucene`;
`innerproduct` on L2-normalised vectors, which is cosine), `model_<modality>` keyword, `text` with
the `english` analyzer, keyword ids and `user_metadata.*` (strings mapped as keywords); Serverless
manages shards and replicas itself, so its body leaves them out. Pure functions, apart from the
adapter, so tests assert the exact bodies."""

from __future__ import annotations

from typing import Any

SPACE_TYPE = "innerproduct"


def alias_name(prefix: str, index_id: str) -> str:
    return f"{prefix}-{index_id.lower()}"


def physical_name(prefix: str, index_id: str, generation: int) -> str:
    return f"{prefix}-{index_id.lower()}-g{generation}"


def vector_field(modality: str) -> str:
    return f"vec_{modality}"


def model_field(modality: str) -> str:
    return f"model_{modality}"


def knn_vector_mapping(dim: int, *, engine: str) -> dict[str, Any]:
    return {
        "type": "knn_vector",
        "dimension": dim,
        "method": {
            "name": "hnsw",
            "engine": engine,
            "space_type": SPACE_TYPE,
            "parameters": {"m": 16, "ef_construction": 128},
        },
    }


def mapping_body(
    dims: dict[str, int], *, engine: str = "faiss", serverless: bool = False, alias: str | None = None
) -> dict[str, Any]:
    """The create-index body: settings, mappings (one knn_vector field per modality in `dims`) and,
    when given, the alias the index is born with (so it is never reachable without one)."""
    index_settings: dict[str, Any] = {"knn": True}
    if not serverless:
        index_settings.update(
            {"number_of_shards": 1, "number_of_replicas": 1, "knn.algo_param.ef_search": 128}
        )
    properties: dict[str, Any] = {
        "segment_id": {"type": "keyword"},
        "tenant_id": {"type": "keyword"},
        "index_id": {"type": "keyword"},
        "asset_id": {"type": "keyword"},
        "media_type": {"type": "keyword"},
        "start": {"type": "float"},
        "end": {"type": "float"},
        "text": {"type": "text", "analyzer": "english"},
        "keyframe_key": {"type": "keyword", "index": False},
        "user_metadata": {"type": "object", "dynamic": True},
    }
    for modality in sorted(dims):
        properties[vector_field(modality)] = knn_vector_mapping(dims[modality], engine=engine)
        properties[model_field(modality)] = {"type": "keyword"}
    body: dict[str, Any] = {
        "settings": {"index": index_settings},
        "mappings": {
            "dynamic": "strict",
            "dynamic_templates": [
                {
                    "user_metadata_strings": {
                        "path_match": "user_metadata.*",
                        "match_mapping_type": "string",
                        "mapping": {"type": "keyword"},
                    }
                }
            ],
            "properties": properties,
        },
    }
    if alias is not None:
        body["aliases"] = {alias: {}}
    return body
