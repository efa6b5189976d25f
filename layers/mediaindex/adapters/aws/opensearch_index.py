"""OpenSearch search index: a managed domain or an OpenSearch Serverless collection.

This module holds the SearchIndex adapter and `make_client`; the index layout and create body are
in opensearch_mapping, every request body in opensearch_bodies (pure functions, so tests assert them
exactly), and `_bulk` with its retries in opensearch_bulk. Each index key (a mediaindex index's
generation, domain.search.search_key) is reached through its alias `<prefix>-<key>`. On a managed
domain a new key joins a shared pool index (opensearch_mapping.pool_name; `pools` of them per
layout) behind a filtered alias routed by the key, so hundreds of indexes cost a few shards, not
one each (docs/scale.md). Reads, writes and asset deletes go through the alias either way, which
applies the filter and the routing; dropping a pooled key deletes its documents from the pool and
removes its alias. A key written by a previous release (or on Serverless, or with `pools=0`) owns a
physical index `<prefix>-<key>-g1` behind a plain alias, and dropping it deletes that index, as
before; the get-alias answer says which kind a key is. A re-index builds the next generation
under its own key beside the live one; the index row names the key queries read, so the swap is
that row's write (services/reindex.py), and the old key is then dropped.

Serverless differs (documented here, handled by `serverless=True`):
- no pools: the service manages shards, so there is no per-node shard cap to save, and custom
  routing is not something it documents; every key keeps its own index;
- no `refresh` parameter on writes and no `_refresh`: documents turn searchable after the
  collection's own refresh (seconds), so a just-deleted asset may still be returned briefly; the
  search service drops hits whose asset is gone, which covers that window;
- no `_delete_by_query`: deletes are a search for ids then a bulk of `delete` actions, repeated
  until none are left;
- index settings such as `number_of_shards`/`number_of_replicas` are managed by the service and
  rejected, so the create body leaves them out;
- the faiss engine is the one to use for vector search collections.

An index is written and queried as its mapping says, not as today's settings say: the vector
fields' dimensions and data_types are read from the mapping found (`mapped_vectors`), so indexes
created before a change of `precision` keep working (their vectors are still sent as they were
mapped) and only new indexes and new vector fields take the new precision. `refresh` is a policy
(opensearch_bulk.REFRESH_POLICIES) for writes and deletes alike.
Auth is SigV4 for both (`service="es"` for a domain, `"aoss"` for Serverless): see `make_client`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mediaindex.adapters.aws.opensearch_bodies import (
    add_alias_body,
    bulk_actions,
    cosine_from_score,
    delete_actions,
    delete_by_asset_body,
    drop_key_body,
    ids_query_body,
    knn_query_body,
    remove_alias_body,
    text_query_body,
)
from mediaindex.adapters.aws.opensearch_bulk import (
    MAX_BULK_ACTIONS,
    BulkWriter,
    delete_by_query_refresh,
    error_type,
    status_of,
    write_refresh,
)
from mediaindex.adapters.aws.opensearch_mapping import (
    BYTE,
    FLOAT,
    AliasTarget,
    VectorField,
    alias_name,
    alias_target,
    check_layout,
    knn_vector_mapping,
    mapped_vectors,
    mapping_body,
    model_field,
    physical_name,
    pool_name,
    vector_field,
)
from mediaindex.domain.errors import UnavailableError, ValidationError
from mediaindex.ports.search import SearchDoc, SearchFilter, SearchHit, SearchIndex

BULK_CHUNK = MAX_BULK_ACTIONS  # ids per search page of a Serverless delete
ALREADY_EXISTS = "resource_already_exists_exception"


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
        precision: str = "fp32",
        serverless: bool = False,
        refresh: bool | str = False,
        shards: int = 1,
        pools: int = 1,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Everything checked here fails the start, not the first write.
        check_layout(engine=engine, precision=precision)
        if shards < 1:
            raise ValueError(f"shards must be at least 1, not {shards}")
        if pools < 0:
            raise ValueError(f"pools must be 0 (an index per key) or more, not {pools}")
        policy = ("true" if refresh else "false") if isinstance(refresh, bool) else refresh
        self._client = client
        self.prefix = prefix
        self.engine = engine
        self.precision = precision
        self.serverless = serverless
        self.shards = shards
        self.pools = 0 if serverless else pools
        self.refresh = policy
        self._writer = BulkWriter(
            client,
            refresh=write_refresh(policy, serverless=serverless),
            max_retries=max_retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            sleep=sleep,
        )
        self._fields: dict[str, dict[str, VectorField]] = {}  # alias -> modality -> field, as mapped

    @property
    def _data_type(self) -> str:
        """The data_type new vector fields get."""
        return BYTE if self.precision == "byte" else FLOAT

    # Index lifecycle

    def _lookup(self, alias: str) -> AliasTarget | None:
        """Where the alias points, or None when there is no such alias (nothing written yet)."""
        try:
            return alias_target(self._client.indices.get_alias(name=alias), alias)
        except Exception as e:
            if status_of(e) == 404:
                return None
            raise UnavailableError(f"search index unreachable: {e}") from e

    def _mapped_fields(self, alias: str) -> dict[str, VectorField] | None:
        if alias in self._fields:
            return self._fields[alias]
        if self._lookup(alias) is None:
            return None
        try:
            fields = mapped_vectors(self._client.indices.get_mapping(index=alias))
        except Exception as e:
            raise UnavailableError(f"search index unreachable: {e}") from e
        self._fields[alias] = fields
        return fields

    def _create_body(self, dims: dict[str, int], alias: str, routed_key: str | None = None) -> dict[str, Any]:
        return mapping_body(
            dims,
            engine=self.engine,
            precision=self.precision,
            serverless=self.serverless,
            alias=alias,
            shards=self.shards,
            routed_key=routed_key,
        )

    def _join_pool(self, index_id: str, alias: str, dims: dict[str, int]) -> dict[str, VectorField]:
        """Adds the key's alias to its pool, creating the pool (born with that alias) when it is not
        there; a pool another process created meanwhile is joined."""
        pool = pool_name(
            self.prefix, index_id, dims, engine=self.engine, precision=self.precision, pools=self.pools
        )
        try:
            self._client.indices.update_aliases(body=add_alias_body(pool, alias, index_id))
        except Exception as e:
            if status_of(e) != 404:
                raise
            try:
                self._client.indices.create(index=pool, body=self._create_body(dims, alias, index_id))
                return {m: VectorField(d, self._data_type) for m, d in dims.items()}
            except Exception as created:
                if error_type(created) != ALREADY_EXISTS:
                    raise
                self._client.indices.update_aliases(body=add_alias_body(pool, alias, index_id))
        # The pool may map more modalities than this key writes, or lack some (added below).
        return mapped_vectors(self._client.indices.get_mapping(index=pool))

    def ensure_index(self, index_id: str, dims: dict[str, int]) -> str:
        """Gives a new key its alias (on a pool, or on an index of its own when pools are off) and
        adds vector fields for new modalities. Returns the alias."""
        alias = alias_name(self.prefix, index_id)
        mapped = self._mapped_fields(alias)
        try:
            if mapped is None and not self.pools:
                physical = physical_name(self.prefix, index_id, 1)
                self._client.indices.create(index=physical, body=self._create_body(dims, alias))
                self._fields[alias] = {m: VectorField(d, self._data_type) for m, d in dims.items()}
                return alias
            if mapped is None:
                mapped = self._fields[alias] = self._join_pool(index_id, alias, dims)
            for modality, dim in dims.items():
                if modality not in mapped:
                    self._client.indices.put_mapping(
                        index=alias,
                        body={
                            "properties": {
                                vector_field(modality): knn_vector_mapping(
                                    dim, engine=self.engine, precision=self.precision
                                ),
                                model_field(modality): {"type": "keyword"},
                            }
                        },
                    )
                    mapped[modality] = VectorField(dim, self._data_type)
                elif mapped[modality].dim != dim:
                    raise ValidationError(
                        f"{modality} vectors have {dim} dims; index {index_id} holds "
                        f"{mapped[modality].dim}: re-index it (POST /v1/indexes/{id}/reindex)",
                        field="vectors",
                    )
        except ValidationError:
            raise
        except Exception as e:
            raise UnavailableError(f"could not prepare search index: {e}") from e
        return alias

    # Writes

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
            data_types = {m: f.data_type for m, f in self._fields.get(alias, {}).items()}
            # The writer cuts the requests by count and by size.
            self._writer.send(bulk_actions(group, index=alias, data_types=data_types))

    def _delete_matching(self, index: str, body: dict[str, Any], *, routing: str | None = None) -> None:
        try:
            if not self.serverless:
                kwargs: dict[str, Any] = {"conflicts": "proceed", "ignore_unavailable": True}
                if routing is not None:
                    kwargs["routing"] = routing
                if delete_by_query_refresh(self.refresh):
                    kwargs["refresh"] = True
                self._client.delete_by_query(index=index, body=body, **kwargs)
                return
            while True:
                resp = self._client.search(
                    index=index, body=ids_query_body(body, size=BULK_CHUNK), ignore_unavailable=True
                )
                targets = [(h["_index"], h["_id"]) for h in resp["hits"]["hits"]]
                if not targets:
                    return
                self._writer.send(delete_actions(targets))
                if len(targets) < BULK_CHUNK:
                    return
        except UnavailableError:
            raise
        except Exception as e:
            if status_of(e) == 404:
                return
            raise UnavailableError(f"search index delete failed: {e}") from e

    def delete_asset(self, tenant_id: str, asset_id: str, *, index_id: str | None = None) -> None:
        """Deletes within `index_id`'s alias when given (one index's shards, not every index's; a
        pooled key's alias adds its filter and its routing: one shard of the pool); without it
        (callers that do not know the index) the pattern covers every index of this prefix."""
        target = f"{self.prefix}-*" if index_id is None else alias_name(self.prefix, index_id)
        self._delete_matching(target, delete_by_asset_body(tenant_id, asset_id, index_id))

    def delete_index(self, tenant_id: str, index_id: str) -> None:
        """Drops a key. A pooled key's documents are deleted from its pool (on the key's shard), then
        its alias removed, in that order so a failure leaves the alias for the retry; the pool stays.
        A key with indexes of its own (a mediaindex index belongs to one tenant: ids are unique and
        the service checks the owner) has them dropped whole: faster than deleting documents."""
        alias = alias_name(self.prefix, index_id)
        target = self._lookup(alias)
        self._fields.pop(alias, None)
        if target is None:
            return
        try:
            if target.pooled:
                (pool,) = target.indexes
                self._delete_matching(pool, drop_key_body(tenant_id, index_id), routing=index_id)
                self._client.indices.update_aliases(body=remove_alias_body(pool, alias))
                return
            for name in target.indexes:
                self._client.indices.delete(index=name, ignore_unavailable=True)
        except UnavailableError:
            raise
        except Exception as e:
            if status_of(e) == 404:
                return  # dropped meanwhile
            raise UnavailableError(f"search index drop failed: {e}") from e

    def make_visible(self, index_id: str) -> None:
        """A `_refresh` of the key's alias, so the last documents a re-index wrote are searchable
        when queries move onto it. Serverless has no `_refresh` (its own refresh takes seconds)."""
        if self.serverless:
            return
        try:
            self._client.indices.refresh(index=alias_name(self.prefix, index_id))
        except Exception as e:
            if status_of(e) == 404:
                return  # nothing was written under it: nothing to make visible
            raise UnavailableError(f"search index refresh failed: {e}") from e

    # Queries

    def _search(self, index_id: str, body: dict[str, Any]) -> list[SearchHit]:
        try:
            resp = self._client.search(index=alias_name(self.prefix, index_id), body=body)
        except Exception as e:
            if status_of(e) == 404:
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
        mapped = self._mapped_fields(alias_name(self.prefix, flt.index_id))
        if not mapped or modality not in mapped or k <= 0:
            return []
        field = mapped[modality]
        if field.dim != len(vector):
            raise ValidationError(
                f"query vector has {len(vector)} dims; the index holds {field.dim}", field="vector"
            )
        body = knn_query_body(
            flt, modality=modality, model_id=model_id, vector=vector, k=k, data_type=field.data_type
        )
        hits = self._search(flt.index_id, body)
        return [
            SearchHit(
                h.segment_id,
                h.asset_id,
                h.start,
                h.end,
                cosine_from_score(h.score, field.data_type),
                h.text,
                h.keyframe_key,
            )
            for h in hits
        ]

    def text(self, flt: SearchFilter, *, query: str, k: int) -> list[SearchHit]:
        if not query.strip() or k <= 0:
            return []
        return self._search(flt.index_id, text_query_body(flt, query=query, k=k))
