"""The OpenSearch request bodies mediaindex sends: documents and bulk actions, filters, k-NN and
text queries, deletes by asset and by key, a key's alias on a pool, and reading a k-NN score back
as cosine.

Tenant and index key are term filters inside every query (k-NN efficient filtering), never applied
to the results afterwards: on a pool the k nearest are found among the key's own documents, where
the alias's filter alone would apply after the search and could leave fewer than k. A k-NN query
also filters on the vectors' model, so vectors of two models never mix. Serverless has no
delete-by-query, hence `ids_query_body` and `delete_actions`.

A `byte` vector field takes integers in [-128, 127]: unit vectors are sent as round(x * 127), on
both sides, so a byte inner product is about 127² times the cosine (`cosine_from_score` divides it
back). Pure functions, apart from the adapter, so tests assert the exact bodies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mediaindex.adapters.aws.opensearch_mapping import (
    BYTE,
    FLOAT,
    KEY_FIELD,
    METADATA_TERMS,
    metadata_term,
    model_field,
    routed_alias,
    vector_field,
)
from mediaindex.domain.text_terms import content_words
from mediaindex.ports.search import SearchDoc, SearchFilter

SOURCE_FIELDS = ["segment_id", "asset_id", "start", "end", "text", "keyframe_key"]
BYTE_SCALE = 127


def vector_values(vector: list[float], data_type: str = FLOAT) -> list[float] | list[int]:
    """A vector as a field of `data_type` takes it: floats, or a unit vector scaled to bytes."""
    if data_type == BYTE:
        return [max(-128, min(127, round(x * BYTE_SCALE))) for x in vector]
    return [float(x) for x in vector]


def doc_source(doc: SearchDoc, data_types: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The document; `data_types` (modality -> data_type, as the index maps it) says how each
    vector is sent, float where it says nothing."""
    src: dict[str, Any] = {
        "segment_id": doc.segment_id,
        "tenant_id": doc.tenant_id,
        "index_id": doc.index_id,
        "asset_id": doc.asset_id,
        "media_type": doc.media_type,
        "start": doc.start,
        "end": doc.end,
        "text": doc.text,
        "keyframe_key": doc.keyframe_key,
        "user_metadata": dict(doc.user_metadata),
        METADATA_TERMS: [metadata_term(k, v) for k, v in sorted(doc.user_metadata.items())],
    }
    for modality in sorted(doc.vectors):
        model_id, vec = doc.vectors[modality]
        src[vector_field(modality)] = vector_values(vec, (data_types or {}).get(modality, FLOAT))
        src[model_field(modality)] = model_id
    return src


def bulk_actions(
    docs: Iterable[SearchDoc], *, index: str, data_types: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """NDJSON lines for `_bulk`: an `index` action (replace by segment id) then the source."""
    lines: list[dict[str, Any]] = []
    for d in docs:
        lines.append({"index": {"_index": index, "_id": d.segment_id}})
        lines.append(doc_source(d, data_types))
    return lines


def delete_actions(targets: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """`delete` actions for (concrete index, id) pairs, as a search's hits name them."""
    return [{"delete": {"_index": index, "_id": i}} for index, i in targets]


def filter_clauses(flt: SearchFilter) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [
        {"term": {"tenant_id": flt.tenant_id}},
        {"term": {KEY_FIELD: flt.index_id}},
    ]
    if flt.media_type is not None:
        clauses.append({"term": {"media_type": flt.media_type}})
    for key in sorted(flt.user_metadata):
        clauses.append({"term": {METADATA_TERMS: metadata_term(key, flt.user_metadata[key])}})
    return clauses


def knn_query_body(
    flt: SearchFilter, *, modality: str, model_id: str, vector: list[float], k: int, data_type: str = FLOAT
) -> dict[str, Any]:
    """Efficient k-NN filtering: the filter sits inside the `knn` clause, so the k returned all pass
    it (a post-filter would return fewer, or another tenant's rows before filtering)."""
    return {
        "size": k,
        "_source": SOURCE_FIELDS,
        "query": {
            "knn": {
                vector_field(modality): {
                    "vector": vector_values(vector, data_type),
                    "k": k,
                    "filter": {
                        "bool": {
                            "filter": [*filter_clauses(flt), {"term": {model_field(modality): model_id}}]
                        }
                    },
                }
            }
        },
    }


def text_query_body(flt: SearchFilter, *, query: str, k: int) -> dict[str, Any]:
    """The query's content words (mediaindex.domain.text_terms: the same stopwords the embedded index
    drops; the `english` analyzer's own list is shorter), OR-ed by `match`."""
    words = " ".join(content_words(query))
    return {
        "size": k,
        "_source": SOURCE_FIELDS,
        "query": {"bool": {"must": [{"match": {"text": {"query": words}}}], "filter": filter_clauses(flt)}},
    }


def delete_by_asset_body(tenant_id: str, asset_id: str, index_id: str | None = None) -> dict[str, Any]:
    """The asset's documents, only those of one mediaindex index when `index_id` is given (the
    adapter then sends it to that index's alias alone; the term keeps the body exact on its own)."""
    clauses: list[dict[str, Any]] = [{"term": {"tenant_id": tenant_id}}, {"term": {"asset_id": asset_id}}]
    if index_id is not None:
        clauses.append({"term": {KEY_FIELD: index_id}})
    return {"query": {"bool": {"filter": clauses}}}


def drop_key_body(tenant_id: str, key: str) -> dict[str, Any]:
    """Every document of one index key: what dropping a pooled key deletes from its pool."""
    return {"query": {"bool": {"filter": [{"term": {"tenant_id": tenant_id}}, {"term": {KEY_FIELD: key}}]}}}


def add_alias_body(pool: str, alias: str, key: str) -> dict[str, Any]:
    """`_aliases`: a key joins a pool that exists already, behind its filtered, routed alias."""
    return {"actions": [{"add": {"index": pool, "alias": alias, **routed_alias(key)}}]}


def remove_alias_body(pool: str, alias: str) -> dict[str, Any]:
    """`_aliases`: a dropped key leaves its pool (the pool and the other keys' aliases stay)."""
    return {"actions": [{"remove": {"index": pool, "alias": alias}}]}


def ids_query_body(query: dict[str, Any], *, size: int) -> dict[str, Any]:
    """Serverless has no delete-by-query: find the ids, then bulk-delete them."""
    return {"size": size, "_source": False, "query": query["query"]}


def cosine_from_score(score: float, data_type: str = FLOAT) -> float:
    """OpenSearch turns an inner product `ip` into a score of `ip + 1` (ip >= 0) or `1 / (1 - ip)`
    (ip < 0); invert it so both adapters report cosine similarity in [-1, 1]. Byte vectors give
    127² times the cosine, give or take their rounding, hence the division and the clamp."""
    ip = score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    if data_type != BYTE:
        return ip
    return max(-1.0, min(1.0, ip / BYTE_SCALE**2))
