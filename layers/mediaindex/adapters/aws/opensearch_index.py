"""OpenSearch search index: a managed domain or an OpenSearch Serverless collection.

Layout: one physical index per mediaindex index, `{prefix}-{index_id}-{generation}`, reached only
through the alias `{prefix}-{index_id}`. A new embedding model (other dimensions) is built into a new
generation beside the old one and swapped in atomically with `swap_generation`; queries never notice.
Every request body is built by a pure function below so tests assert them exactly.

Fields: `vec_<modality>` knn_vector (HNSW; engine `faiss` or `lucene`; `innerproduct` on L2-normalised
vectors, which is cosine), `model_<modality>` keyword (a k-NN query filters on it, so vectors of two
models never mix), `text` with the `english` analyzer, keyword `tenant_id`, `index_id`, `asset_id`,
`media_type`, and `user_metadata.*` (strings mapped as keywords) for filters. Tenant and index are
term filters inside every query (k-NN efficient filtering), never applied to the results afterwards.

Serverless differs (documented here, handled by `serverless=True`):
- no `refresh` parameter on writes and no `_refresh`: documents turn searchable after the
  collection's own refresh (seconds), so a just-deleted asset may still be returned briefly; the
  search service drops hits whose asset is gone, which covers that window;
- no `_delete_by_query`: deletes are a search for ids then a bulk of `delete` actions, repeated
  until none are left;
- index settings such as `number_of_shards`/`number_of_replicas` are managed by the service and
  rejected, so the create body leaves them out;
- the faiss engine is the one to use for vector search collections.
Auth is SigV4 for both (`service="es"` for a domain, `"aoss"` for Serverless): see `make_client`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from mediaindex.errors import UnavailableError, ValidationError
from mediaindex.ports.search import SearchDoc, SearchFilter, SearchHit, SearchIndex

MODALITIES = ("visual", "transcription")
SPACE_TYPE = "innerproduct"
SOURCE_FIELDS = ["segment_id", "asset_id", "start", "end", "text", "keyframe_key"]
BULK_CHUNK = 500


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
        clauses.append({"term": {f"user_metadata.{key}": flt.user_metadata[key]}})
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
    return {
        "size": k,
        "_source": SOURCE_FIELDS,
        "query": {"bool": {"must": [{"match": {"text": {"query": query}}}], "filter": filter_clauses(flt)}},
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


def _status(e: Exception) -> int | None:
    code = getattr(e, "status_code", None)
    return code if isinstance(code, int) else None


def make_client(url: str, *, region: str | None = None, serverless: bool = False) -> Any:
    """An opensearch-py client for `url`; SigV4-signed (service `aoss` for Serverless, `es` for a
    domain) when `region` is given, else plain (a local cluster in tests)."""
    from opensearchpy import OpenSearch, RequestsAWSV4SignerAuth, RequestsHttpConnection

    kwargs: dict[str, Any] = {"hosts": [url], "timeout": 30, "connection_class": RequestsHttpConnection}
    if region:
        import boto3

        credentials = boto3.Session().get_credentials()
        kwargs["http_auth"] = RequestsAWSV4SignerAuth(credentials, region, "aoss" if serverless else "es")
    return OpenSearch(**kwargs)


class OpenSearchIndex(SearchIndex):
    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "mediaindex",
        engine: str = "faiss",
        serverless: bool = False,
        refresh: bool = False,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if engine not in ("faiss", "lucene"):
            raise ValueError(f"engine must be faiss or lucene, not {engine!r}")
        self._client = client
        self.prefix = prefix
        self.engine = engine
        self.serverless = serverless
        # Wait for writes to be searchable (tests, the local cluster); Serverless cannot.
        self._refresh = refresh and not serverless
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._dims: dict[str, dict[str, int]] = {}  # alias -> modality -> dim, as mapped

    # Index lifecycle

    def _mapped_dims(self, alias: str) -> dict[str, int] | None:
        if alias in self._dims:
            return self._dims[alias]
        try:
            if not self._client.indices.exists_alias(name=alias):
                return None
            resp = self._client.indices.get_mapping(index=alias)
        except Exception as e:
            raise UnavailableError(f"search index unreachable: {e}") from e
        dims: dict[str, int] = {}
        for body in resp.values():
            for name, spec in body.get("mappings", {}).get("properties", {}).items():
                if name.startswith("vec_") and spec.get("type") == "knn_vector":
                    dims[name[len("vec_") :]] = int(spec["dimension"])
        self._dims[alias] = dims
        return dims

    def ensure_index(self, index_id: str, dims: dict[str, int], *, generation: int = 1) -> str:
        """Creates the physical index and its alias when missing, and adds vector fields for new
        modalities. Returns the alias."""
        alias = alias_name(self.prefix, index_id)
        mapped = self._mapped_dims(alias)
        try:
            if mapped is None:
                self._client.indices.create(
                    index=physical_name(self.prefix, index_id, generation),
                    body=mapping_body(dims, engine=self.engine, serverless=self.serverless, alias=alias),
                )
                self._dims[alias] = dict(dims)
                return alias
            for modality, dim in dims.items():
                if modality not in mapped:
                    self._client.indices.put_mapping(
                        index=alias,
                        body={
                            "properties": {
                                vector_field(modality): knn_vector_mapping(dim, engine=self.engine),
                                model_field(modality): {"type": "keyword"},
                            }
                        },
                    )
                    mapped[modality] = dim
                elif mapped[modality] != dim:
                    raise ValidationError(
                        f"{modality} vectors have {dim} dims; index {index_id} holds {mapped[modality]}: "
                        "build a new generation and swap it in",
                        field="vectors",
                    )
        except ValidationError:
            raise
        except Exception as e:
            raise UnavailableError(f"could not prepare search index: {e}") from e
        return alias

    def swap_generation(self, index_id: str, new_generation: int) -> None:
        """Points the alias at a generation built beside the current one, in one atomic request."""
        alias = alias_name(self.prefix, index_id)
        new = physical_name(self.prefix, index_id, new_generation)
        try:
            current = list(self._client.indices.get_alias(name=alias))
        except Exception as e:
            if _status(e) != 404:
                raise UnavailableError(f"search index unreachable: {e}") from e
            current = []
        actions: list[dict[str, Any]] = [
            {"remove": {"index": old, "alias": alias}} for old in current if old != new
        ]
        actions.append({"add": {"index": new, "alias": alias}})
        self._client.indices.update_aliases(body={"actions": actions})
        self._dims.pop(alias, None)

    # Writes

    def _bulk(self, lines: list[dict[str, Any]]) -> None:
        """Sends `_bulk`, retrying the whole request or only the items answered 429 with bounded
        exponential backoff; other item errors are not retryable and raise."""
        pending = lines
        for attempt in range(self._max_retries + 1):
            kwargs: dict[str, Any] = {"body": pending}
            if self._refresh:
                kwargs["refresh"] = "true"
            try:
                resp = self._client.bulk(**kwargs)
            except Exception as e:
                if _status(e) != 429 or attempt == self._max_retries:
                    raise UnavailableError(f"search index write failed: {e}") from e
                self._sleep(min(self._max_backoff_s, self._backoff_s * 2**attempt))
                continue
            if not resp.get("errors"):
                return
            retry: list[dict[str, Any]] = []
            i = 0
            for item in resp["items"]:
                op, result = next(iter(item.items()))
                action = pending[i]
                step = 1 if op == "delete" else 2
                status = int(result.get("status", 500))
                if status == 429:
                    retry.extend(pending[i : i + step])
                elif status >= 300 and not (op == "delete" and status == 404):
                    raise UnavailableError(f"search index rejected {op} of {action[op].get('_id')}: {result}")
                i += step
            if not retry:
                return
            if attempt == self._max_retries:
                break
            pending = retry
            self._sleep(min(self._max_backoff_s, self._backoff_s * 2**attempt))
        raise UnavailableError("search index kept answering 429 (too many requests)")

    def upsert(self, docs: list[SearchDoc]) -> None:
        by_index: dict[str, list[SearchDoc]] = {}
        for d in docs:
            by_index.setdefault(d.index_id, []).append(d)
        for index_id, group in by_index.items():
            dims: dict[str, int] = {}
            for d in group:
                for modality, (_model, vec) in d.vectors.items():
                    dims.setdefault(modality, len(vec))
            alias = self.ensure_index(index_id, dims)
            for i in range(0, len(group), BULK_CHUNK):
                self._bulk(bulk_actions(group[i : i + BULK_CHUNK], index=alias))

    def _delete_matching(self, index: str, body: dict[str, Any]) -> None:
        try:
            if not self.serverless:
                self._client.delete_by_query(
                    index=index, body=body, conflicts="proceed", refresh=True, ignore_unavailable=True
                )
                return
            while True:
                resp = self._client.search(
                    index=index, body=ids_query_body(body, size=BULK_CHUNK), ignore_unavailable=True
                )
                targets = [(h["_index"], h["_id"]) for h in resp["hits"]["hits"]]
                if not targets:
                    return
                self._bulk(delete_actions(targets))
                if len(targets) < BULK_CHUNK:
                    return
        except UnavailableError:
            raise
        except Exception as e:
            if _status(e) == 404:
                return
            raise UnavailableError(f"search index delete failed: {e}") from e

    def delete_asset(self, tenant_id: str, asset_id: str) -> None:
        # The asset's index is not known here; the alias pattern covers every index of this prefix.
        self._delete_matching(f"{self.prefix}-*", delete_by_asset_body(tenant_id, asset_id))

    def delete_index(self, tenant_id: str, index_id: str) -> None:
        # A mediaindex index belongs to one tenant (ids are unique and the service checks the owner),
        # so its physical indexes are dropped whole: faster than deleting documents.
        alias = alias_name(self.prefix, index_id)
        try:
            physical = list(self._client.indices.get_alias(name=alias))
        except Exception as e:
            if _status(e) == 404:
                return
            raise UnavailableError(f"search index unreachable: {e}") from e
        for name in physical:
            self._client.indices.delete(index=name, ignore_unavailable=True)
        self._dims.pop(alias, None)

    # Queries

    def _search(self, index_id: str, body: dict[str, Any]) -> list[SearchHit]:
        try:
            resp = self._client.search(index=alias_name(self.prefix, index_id), body=body)
        except Exception as e:
            if _status(e) == 404:
                return []  # nothing indexed yet
            raise UnavailableError(f"search failed: {e}") from e
        hits = []
        for h in resp["hits"]["hits"]:
            s = h["_source"]
            hits.append(
                SearchHit(
                    segment_id=s["segment_id"],
                    asset_id=s["asset_id"],
                    start=float(s["start"]),
                    end=float(s["end"]),
                    score=float(h["_score"]),
                    text=s.get("text"),
                    keyframe_key=s.get("keyframe_key"),
                )
            )
        return hits

    def knn(
        self, flt: SearchFilter, *, modality: str, model_id: str, vector: list[float], k: int
    ) -> list[SearchHit]:
        mapped = self._mapped_dims(alias_name(self.prefix, flt.index_id))
        if not mapped or modality not in mapped or k <= 0:
            return []
        if mapped[modality] != len(vector):
            raise ValidationError(
                f"query vector has {len(vector)} dims; the index holds {mapped[modality]}", field="vector"
            )
        body = knn_query_body(flt, modality=modality, model_id=model_id, vector=vector, k=k)
        hits = self._search(flt.index_id, body)
        return [
            SearchHit(
                h.segment_id, h.asset_id, h.start, h.end, cosine_from_score(h.score), h.text, h.keyframe_key
            )
            for h in hits
        ]

    def text(self, flt: SearchFilter, *, query: str, k: int) -> list[SearchHit]:
        if not query.strip() or k <= 0:
            return []
        return self._search(flt.index_id, text_query_body(flt, query=query, k=k))
