"""The OpenSearch request bodies mediaindex sends: documents and bulk actions, filters, k-NN and
text queries, deletes by asset, and reading a k-NN score back as cosine.

Tenant and index are term filters inside every query (k-NN efficient filtering), never applied to
the results afterwards, and a k-NN query also filters on the vectors' model, so vectors of two
models never mix. Serverless has no delete-by-query, hence `ids_query_body` and `delete_actions`.
Pure functions, apart from the adapter, so tests assert the exact bodies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mediaindex.adapters.aws.opensearch_mapping import (
    METADATA_TERMS,
    metadata_term,
    model_field,
    vector_field,
)
from mediaindex.domain.text_terms import content_words
from mediaindex.ports.search import SearchDoc, SearchFilter

SOURCE_FIELDS = ["segment_id", "asset_id", "start", "end", "text", "keyframe_key"]


def doc_source(doc: SearchDoc) -> dict[str, Any]:
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
        src[vector_field(modality)] = [float(x) for x in vec]
        src[model_field(modality)] = model_id
    return src


def bulk_actions(docs: Iterable[SearchDoc], *, index: str) -> list[dict[str, Any]]:
    """NDJSON lines for `_bulk`: an `index` action (replace by segment id) then the source."""
    lines: list[dict[str, Any]] = []
    for d in docs:
        lines.append({"index": {"_index": index, "_id": d.segment_id}})
        lines.append(doc_source(d))
    return lines


def delete_actions(targets: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """`delete` actions for (concrete index, id) pairs, as a search's hits name them."""
    return [{"delete": {"_index": index, "_id": i}} for index, i in targets]


def filter_clauses(flt: SearchFilter) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [
        {"term": {"tenant_id": flt.tenant_id}},
        {"term": {"index_id": flt.index_id}},
    ]
    if flt.media_type is not None:
        clauses.append({"term": {"media_type": flt.media_type}})
    for key in sorted(flt.user_metadata):
        clauses.append({"term": {METADATA_TERMS: metadata_term(key, flt.user_metadata[key])}})
    return clauses


def knn_query_body(
    flt: SearchFilter, *, modality: str, model_id: str, vector: list[float], k: int
) -> dict[str, Any]:
    """Efficient k-NN filtering: the filter sits inside the `knn` clause, so the k returned all pass
    it (a post-filter would return fewer, or another tenant's rows before filtering)."""
    return {
        "size": k,
        "_source": SOURCE_FIELDS,
        "query": {
            "knn": {
                vector_field(modality): {
                    "vector": [float(x) for x in vector],
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


def delete_by_asset_body(tenant_id: str, asset_id: str) -> dict[str, Any]:
    return {
        "query": {"bool": {"filter": [{"term": {"tenant_id": tenant_id}}, {"term": {"asset_id": asset_id}}]}}
    }


def ids_query_body(query: dict[str, Any], *, size: int) -> dict[str, Any]:
    """Serverless has no delete-by-query: find the ids, then bulk-delete them."""
    return {"size": size, "_source": False, "query": query["query"]}


def cosine_from_score(score: float) -> float:
    """OpenSearch turns an inner product `ip` into a score of `ip + 1` (ip >= 0) or `1 / (1 - ip)`
    (ip < 0); invert it so both adapters report cosine similarity in [-1, 1]."""
    return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
