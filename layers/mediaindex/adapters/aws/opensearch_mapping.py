"""OpenSearch index layout for mediaindex: the names of indexes, aliases and fields, and the
create-index body (settings and mappings).

Each mediaindex index is one physical index per generation, `{prefix}-{index_id}-g{generation}`,
reached only through the alias `{prefix}-{index_id}`, so a new embedding model can be built beside
the old one and swapped in. Fields: `vec_<modality>` knn_vector (HNSW; engine `faiss` or `lucene`;
`innerproduct` on L2-normalised vectors, which is cosine), `model_<modality>` keyword, `text` with
the `english` analyzer, and keyword ids.

User metadata is free-form, so it is never mapped key by key (each new key would add a field to the
mapping until the index hits its field limit): `user_metadata` is kept in `_source` only
(`enabled: false`), and `user_metadata_terms` holds one keyword per top-level pair, `["key",value]`
in canonical JSON, which filters match exactly (typed as in the embedded index: 2024 is not "2024").

Replicas: `auto_expand_replicas` 0-1, so a single-node domain holds no replica it could never
allocate (its indexes would stay yellow) and a larger one keeps one. Serverless manages shards and
replicas itself, so its body leaves them out. Pure functions, apart from the adapter, so tests
assert the exact bodies."""

from __future__ import annotations

import json
from typing import Any

SPACE_TYPE = "innerproduct"
METADATA_TERMS = "user_metadata_terms"


def alias_name(prefix: str, index_id: str) -> str:
    return f"{prefix}-{index_id.lower()}"


def physical_name(prefix: str, index_id: str, generation: int) -> str:
    return f"{prefix}-{index_id.lower()}-g{generation}"


def vector_field(modality: str) -> str:
    return f"vec_{modality}"


def model_field(modality: str) -> str:
    return f"model_{modality}"


def metadata_term(key: str, value: Any) -> str:
    """The keyword a document carries, and a filter matches, for one user_metadata pair. Integral
    floats read as ints (1.0 == 1, as in Python and the embedded index); bools stay bools."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps([key, value], sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
            {"number_of_shards": 1, "auto_expand_replicas": "0-1", "knn.algo_param.ef_search": 128}
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
        "user_metadata": {"type": "object", "enabled": False},
        METADATA_TERMS: {"type": "keyword"},
    }
    for modality in sorted(dims):
        properties[vector_field(modality)] = knn_vector_mapping(dims[modality], engine=engine)
        properties[model_field(modality)] = {"type": "keyword"}
    body: dict[str, Any] = {
        "settings": {"index": index_settings},
        "mappings": {"dynamic": "strict", "properties": properties},
    }
    if alias is not None:
        body["aliases"] = {alias: {}}
    return body
