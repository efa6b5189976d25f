"""OpenSearch index layout for mediaindex: the names of indexes, aliases and fields, and the
create-index body (settings and mappings).

Each index key (a mediaindex index's generation, domain.search.search_key) is reached only through
its alias `{prefix}-{key}`, so a new generation can be built beside the live one and swapped in.
On a managed domain a new key lives in a shared pool index, `{prefix}-pool-{layout}-{n}`: `layout`
names what the mapping holds (engine, precision, each vector field's dimension), since only keys
whose vectors map alike can share one, and `n` is a stable hash of the key modulo the pool count.
Its alias there is filtered on the key and routed by it (`routed_alias`): searches through it see
only the key's documents, on the one shard the key's writes went to. The key is the documents'
`index_id` field (the pipeline writes a generation's key there), so the filter needs no new field
and the documents of a previous release already carry it. A key of a previous release, or one on
Serverless (no shards to save, and no custom routing to rely on), has its own physical index
`{prefix}-{key}-g1` behind a plain alias; `alias_target` tells the two apart.

Fields: `vec_<modality>` knn_vector (HNSW; engine `faiss` or `lucene`; `innerproduct` on
L2-normalised vectors, which is cosine), `model_<modality>` keyword, `text` with the `english`
analyzer, and keyword ids.

User metadata is free-form, so it is never mapped key by key (each new key would add a field to the
mapping until the index hits its field limit): `user_metadata` is kept in `_source` only
(`enabled: false`), and `user_metadata_terms` holds one keyword per top-level pair, `["key",value]`
in canonical JSON, which filters match exactly (typed as in the embedded index: 2024 is not "2024").
Not `flat_object`: its leaves are untyped strings keyed `path=value`, so it would match 2024 to
"2024" and confuse key `k=v` with value `x` and key `k` with value `v=x` (docs/scale.md).

Vectors are indexed but never stored in `_source` (`_source.excludes: vec_*`): hits never read
them back, and kept there they cost about 21 bytes of JSON per dimension, on disk and in every
fetch, which loads a document's whole `_source` (docs/scale.md). Their precision is a setting
(`PRECISIONS`): `fp32`; `fp16`, the faiss scalar quantizer (half the graph memory, recall nearly
unchanged on unit vectors, which sit far inside its range); `byte`, `data_type: byte` (a quarter;
lucene, and faiss from OpenSearch 2.17), whose values the adapter quantizes (opensearch_bodies).
An index keeps the precision it was created with: `mapped_vectors` reads it back from the mapping,
so a changed setting applies to new indexes only.

Shards: `number_of_shards` is a setting (docs/scale.md: one shard per 10-50 GB a new index, a
pool above all, is expected to hold).
Replicas: `auto_expand_replicas` 0-1, so a single-node domain holds no replica it could never
allocate (its indexes would stay yellow) and a larger one keeps one. Serverless manages shards and
replicas itself, so its body leaves them out. Pure functions, apart from the adapter, so tests
assert the exact bodies."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, NamedTuple

SPACE_TYPE = "innerproduct"
METADATA_TERMS = "user_metadata_terms"
ENGINES = ("faiss", "lucene")
PRECISIONS = ("fp32", "fp16", "byte")
FLOAT, BYTE = "float", "byte"  # a knn_vector's data_type, as the mapping names it
VECTOR_FIELDS = "vec_*"
KEY_FIELD = "index_id"  # every document's search key: what a pool's aliases filter on


class VectorField(NamedTuple):
    """A mapped vector field: its dimension and the data_type its values are sent as."""

    dim: int
    data_type: str = FLOAT


def check_layout(*, engine: str, precision: str) -> None:
    """Raises ValueError, at start-up, for an engine or precision this layout cannot build."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be faiss or lucene, not {engine!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"vector precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp16" and engine != "faiss":
        # The fp16 scalar quantizer is faiss's; lucene has no 16-bit float vectors.
        raise ValueError("vector precision fp16 needs the faiss engine (lucene has no fp16 encoder)")


def alias_name(prefix: str, index_id: str) -> str:
    return f"{prefix}-{index_id.lower()}"


def physical_name(prefix: str, index_id: str, generation: int) -> str:
    return f"{prefix}-{index_id.lower()}-g{generation}"


def layout_name(dims: dict[str, int], *, engine: str, precision: str) -> str:
    """What a pool's mapping holds, as part of an index name: `faiss-fp32-transcription384-visual512`."""
    fields = (re.sub(r"[^a-z0-9]", "", m.lower()) + str(dims[m]) for m in sorted(dims))
    return "-".join([engine, precision, *fields])


def pool_name(prefix: str, key: str, dims: dict[str, int], *, engine: str, precision: str, pools: int) -> str:
    """The pool a new key goes into: its layout's, picked by a hash stable across processes and
    releases (not Python's salted `hash`)."""
    n = int.from_bytes(hashlib.sha256(key.lower().encode()).digest()[:8], "big") % pools
    return f"{prefix}-pool-{layout_name(dims, engine=engine, precision=precision)}-{n}"


def routed_alias(key: str) -> dict[str, Any]:
    """A key's alias on a pool: searches through it match only the key's documents, and writes and
    searches through it go to the key's one shard (`routing` sets both index and search routing)."""
    return {"filter": {"term": {KEY_FIELD: key}}, "routing": key}


class AliasTarget(NamedTuple):
    """What an alias points at, read from a get-alias answer: the physical indexes and whether it is
    a key's filtered alias on a pool (else the key owns those indexes)."""

    indexes: list[str]
    pooled: bool


def alias_target(resp: dict[str, Any], alias: str) -> AliasTarget:
    pooled = any("filter" in body.get("aliases", {}).get(alias, {}) for body in resp.values())
    return AliasTarget(sorted(resp), pooled)


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


def knn_vector_mapping(dim: int, *, engine: str, precision: str = "fp32") -> dict[str, Any]:
    parameters: dict[str, Any] = {"m": 16, "ef_construction": 128}
    if precision == "fp16":
        parameters["encoder"] = {"name": "sq", "parameters": {"type": "fp16"}}
    mapping: dict[str, Any] = {"type": "knn_vector", "dimension": dim}
    if precision == "byte":
        mapping["data_type"] = BYTE
    mapping["method"] = {"name": "hnsw", "engine": engine, "space_type": SPACE_TYPE, "parameters": parameters}
    return mapping


def mapped_vectors(resp: dict[str, Any]) -> dict[str, VectorField]:
    """modality -> its vector field, read from a get-mapping response (every physical index behind
    an alias maps the same fields). A field without `data_type` is float, as OpenSearch defaults."""
    fields: dict[str, VectorField] = {}
    for body in resp.values():
        for name, spec in body.get("mappings", {}).get("properties", {}).items():
            if name.startswith("vec_") and spec.get("type") == "knn_vector":
                fields[name[len("vec_") :]] = VectorField(
                    int(spec["dimension"]), spec.get("data_type", FLOAT)
                )
    return fields


def mapping_body(
    dims: dict[str, int],
    *,
    engine: str = "faiss",
    precision: str = "fp32",
    serverless: bool = False,
    alias: str | None = None,
    shards: int = 1,
    routed_key: str | None = None,
) -> dict[str, Any]:
    """The create-index body: settings, mappings (one knn_vector field per modality in `dims`, kept
    out of `_source`) and, when given, the alias the index is born with (so it is never reachable
    without one): a pool's is `routed_key`'s filtered, routed alias."""
    index_settings: dict[str, Any] = {"knn": True}
    if not serverless:
        index_settings.update(
            {"number_of_shards": shards, "auto_expand_replicas": "0-1", "knn.algo_param.ef_search": 128}
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
        properties[vector_field(modality)] = knn_vector_mapping(
            dims[modality], engine=engine, precision=precision
        )
        properties[model_field(modality)] = {"type": "keyword"}
    body: dict[str, Any] = {
        "settings": {"index": index_settings},
        "mappings": {
            "dynamic": "strict",
            "_source": {"excludes": [VECTOR_FIELDS]},
            "properties": properties,
        },
    }
    if alias is not None:
        body["aliases"] = {alias: routed_alias(routed_key) if routed_key is not None else {}}
    return body
