"""The OpenSearch adapter on pooled indexes, against a stand-in domain that answers as OpenSearch
does: aliases with filters and routing, documents with the routing they were written with,
searches and delete-by-query through an alias seeing only what its filter matches. Keys written
before pools (an index of their own behind a plain alias) keep working as they did."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from mediaindex.adapters.aws.opensearch_bodies import drop_key_body
from mediaindex.adapters.aws.opensearch_index import OpenSearchIndex
from mediaindex.adapters.aws.opensearch_mapping import mapping_body
from mediaindex.domain.errors import UnavailableError, ValidationError
from mediaindex.ports.search import SearchDoc, SearchFilter

POOL = "mi-pool-faiss-fp32-visual2-0"


class HttpError(Exception):
    """An opensearch-py TransportError's shape: status_code and error type."""

    def __init__(self, status_code: int, error: str = "") -> None:
        super().__init__(f"{status_code} {error}")
        self.status_code = status_code
        self.error = error


def terms(query: dict[str, Any]) -> list[dict[str, Any]]:
    """The term clauses of the queries the adapter sends (knn filter, bool filter)."""
    if "knn" in query:
        (spec,) = query["knn"].values()
        return list(spec["filter"]["bool"]["filter"])
    return list(query.get("bool", {}).get("filter", []))


def matches(src: dict[str, Any], clauses: list[dict[str, Any]]) -> bool:
    for clause in clauses:
        ((field, value),) = clause["term"].items()
        got = src.get(field)
        if not (got == value or (isinstance(got, list) and value in got)):
            return False
    return True


class FakeDomain:
    """The opensearch-py calls the adapter makes, answered from memory as a domain would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.indexes: dict[str, dict[str, Any]] = {}  # name -> mappings, aliases, docs
        self.fail: dict[str, Exception] = {}  # method -> error, raised once
        self.indices = _Indices(self)

    def record(self, method: str, kw: dict[str, Any]) -> None:
        self.calls.append((method, kw))
        if method in self.fail:
            raise self.fail.pop(method)

    def add_index(self, name: str, body: dict[str, Any]) -> None:
        self.indexes[name] = {
            "mappings": body["mappings"],
            "aliases": dict(body.get("aliases", {})),
            "docs": {},
        }

    def resolve(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        """(index, alias spec) pairs a name reaches: an index, a pattern, or an alias."""
        if name in self.indexes:
            return [(name, {})]
        if "*" in name:
            return [(i, {}) for i in self.indexes if fnmatch.fnmatch(i, name)]
        found = [(i, v["aliases"][name]) for i, v in self.indexes.items() if name in v["aliases"]]
        if not found:
            raise HttpError(404, "index_not_found_exception")
        return found

    def visible(self, name: str, query: dict[str, Any], routing: str | None) -> list[tuple[str, str]]:
        """(index, id) of the documents a search through `name` sees: the alias's filter and routing
        apply, as the request's routing does."""
        out = []
        for index, spec in self.resolve(name):
            clauses = terms(query) + ([spec["filter"]] if "filter" in spec else [])
            route = routing or spec.get("routing")
            for doc_id, (doc_routing, src) in self.indexes[index]["docs"].items():
                if matches(src, clauses) and (route is None or doc_routing == route):
                    out.append((index, doc_id))
        return out

    def bulk(self, body: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        self.record("bulk", {"body": body, **kw})
        items, i = [], 0
        while i < len(body):
            op, meta = next(iter(body[i].items()))
            ((index, spec),) = self.resolve(meta["_index"])  # a write alias reaches one index
            if op == "index":
                self.indexes[index]["docs"][meta["_id"]] = (
                    meta.get("routing", spec.get("routing")),
                    body[i + 1],
                )
                i += 2
            else:
                self.indexes[index]["docs"].pop(meta["_id"], None)
                i += 1
            items.append({op: {"status": 200}})
        return {"errors": False, "items": items}

    def search(self, index: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self.record("search", {"index": index, "body": body, **kw})
        hits = [
            {"_index": i, "_id": d, "_score": 2.0, "_source": self.indexes[i]["docs"][d][1]}
            for i, d in self.visible(index, body["query"], kw.get("routing"))
        ]
        return {"hits": {"hits": hits[: body["size"]]}}

    def delete_by_query(self, index: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self.record("delete_by_query", {"index": index, "body": body, **kw})
        gone = self.visible(index, body["query"], kw.get("routing"))
        for i, d in gone:
            del self.indexes[i]["docs"][d]
        return {"deleted": len(gone)}

    def docs(self, index: str) -> dict[str, tuple[str | None, dict[str, Any]]]:
        return dict(self.indexes[index]["docs"])

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


class _Indices:
    def __init__(self, domain: FakeDomain) -> None:
        self.d = domain

    def get_alias(self, name: str) -> dict[str, Any]:
        self.d.record("indices.get_alias", {"name": name})
        answer = {}
        for index, spec in self.d.resolve(name):
            shown = {k: v for k, v in spec.items() if k != "routing"}
            if "routing" in spec:  # OpenSearch answers the routing as both of its halves
                shown.update(index_routing=spec["routing"], search_routing=spec["routing"])
            answer[index] = {"aliases": {name: shown}}
        return answer

    def get_mapping(self, index: str) -> dict[str, Any]:
        self.d.record("indices.get_mapping", {"index": index})
        return {i: {"mappings": self.d.indexes[i]["mappings"]} for i, _ in self.d.resolve(index)}

    def create(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.d.record("indices.create", {"index": index, "body": body})
        if index in self.d.indexes:
            raise HttpError(400, "resource_already_exists_exception")
        self.d.add_index(index, body)
        return {"acknowledged": True}

    def update_aliases(self, body: dict[str, Any]) -> dict[str, Any]:
        self.d.record("indices.update_aliases", {"body": body})
        for action in body["actions"]:
            ((op, spec),) = action.items()
            if spec["index"] not in self.d.indexes:
                raise HttpError(404, "index_not_found_exception")
            aliases = self.d.indexes[spec["index"]]["aliases"]
            if op == "add":
                aliases[spec["alias"]] = {k: v for k, v in spec.items() if k in ("filter", "routing")}
            elif aliases.pop(spec["alias"], None) is None:
                raise HttpError(404, "aliases_not_found_exception")
        return {"acknowledged": True}

    def put_mapping(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.d.record("indices.put_mapping", {"index": index, "body": body})
        for i, _ in self.d.resolve(index):
            self.d.indexes[i]["mappings"]["properties"].update(body["properties"])
        return {"acknowledged": True}

    def delete(self, index: str, **kw: Any) -> dict[str, Any]:
        self.d.record("indices.delete", {"index": index, **kw})
        self.d.indexes.pop(index, None)
        return {"acknowledged": True}

    def refresh(self, index: str) -> dict[str, Any]:
        self.d.record("indices.refresh", {"index": index})
        self.d.resolve(index)
        return {}


def doc(seg: str, key: str, vec: list[float], *, asset: str = "ast_1", text: str = "red car") -> SearchDoc:
    return SearchDoc(
        seg, "ten_a", key, asset, "video", 0.0, 1.0, text=text, vectors={"visual": ("clip", vec)}
    )


def knn(index: OpenSearchIndex, key: str, k: int = 10) -> list[str]:
    flt = SearchFilter(tenant_id="ten_a", index_id=key)
    return [h.segment_id for h in index.knn(flt, modality="visual", model_id="clip", vector=[1.0, 0.0], k=k)]


def legacy_domain() -> FakeDomain:
    """A domain as the previous release left it: key idx_old owns mi-idx_old-g1 behind a plain alias."""
    d = FakeDomain()
    d.add_index("mi-idx_old-g1", mapping_body({"visual": 2}, alias="mi-idx_old"))
    src = {"tenant_id": "ten_a", "index_id": "idx_old", "asset_id": "ast_1", "segment_id": "seg_old"}
    d.indexes["mi-idx_old-g1"]["docs"]["seg_old"] = (
        None,
        {**src, "start": 0, "end": 1, "model_visual": "clip"},
    )
    return d


def test_a_new_key_creates_the_pool_once_with_its_alias_and_writes_through_it() -> None:
    d = FakeDomain()
    index = OpenSearchIndex(d, prefix="mi", shards=2)
    index.upsert([doc("seg_1", "idx_a", [1.0, 0.0]), doc("seg_2", "idx_a", [0.0, 1.0])])
    assert d.calls[:3] == [
        ("indices.get_alias", {"name": "mi-idx_a"}),
        (
            "indices.update_aliases",
            {
                "body": {
                    "actions": [
                        {
                            "add": {
                                "index": POOL,
                                "alias": "mi-idx_a",
                                "filter": {"term": {"index_id": "idx_a"}},
                                "routing": "idx_a",
                            }
                        }
                    ]
                }
            },
        ),
        (
            "indices.create",
            {
                "index": POOL,
                "body": mapping_body({"visual": 2}, alias="mi-idx_a", shards=2, routed_key="idx_a"),
            },
        ),
    ]
    (bulk,) = [kw for m, kw in d.calls if m == "bulk"]
    assert [line["index"]["_index"] for line in bulk["body"] if "index" in line] == ["mi-idx_a", "mi-idx_a"]
    # Each document landed in the pool, routed by its key (the alias's routing), carrying the key.
    assert {i: (r, s["index_id"]) for i, (r, s) in d.docs(POOL).items()} == {
        "seg_1": ("idx_a", "idx_a"),
        "seg_2": ("idx_a", "idx_a"),
    }


def test_a_second_key_joins_the_pool_without_creating_an_index_and_sees_only_its_documents() -> None:
    d = FakeDomain()
    OpenSearchIndex(d, prefix="mi").upsert([doc("seg_a", "idx_a", [1.0, 0.0])])
    d.calls.clear()
    index = OpenSearchIndex(d, prefix="mi")  # another process
    index.upsert([doc("seg_b", "idx_b", [0.9, 0.1], text="red bus")])
    assert "indices.create" not in d.methods()
    assert d.calls[1] == (
        "indices.update_aliases",
        {
            "body": {
                "actions": [
                    {
                        "add": {
                            "index": POOL,
                            "alias": "mi-idx_b",
                            "filter": {"term": {"index_id": "idx_b"}},
                            "routing": "idx_b",
                        }
                    }
                ]
            }
        },
    )
    assert d.calls[2] == ("indices.get_mapping", {"index": POOL})  # the pool's fields, as mapped
    assert set(d.docs(POOL)) == {"seg_a", "seg_b"}
    # Searches go to the key's alias, the key's term inside the knn clause.
    assert knn(index, "idx_b") == ["seg_b"] and knn(index, "idx_a") == ["seg_a"]
    search = next(kw for m, kw in d.calls if m == "search")
    assert search["index"] == "mi-idx_b"
    assert {"term": {"index_id": "idx_b"}} in search["body"]["query"]["knn"]["vec_visual"]["filter"]["bool"][
        "filter"
    ]
    flt = SearchFilter(tenant_id="ten_a", index_id="idx_b")
    assert [h.segment_id for h in index.text(flt, query="red", k=5)] == ["seg_b"]


def test_a_pool_created_meanwhile_by_another_process_is_joined() -> None:
    d = FakeDomain()
    d.fail["indices.update_aliases"] = HttpError(404, "index_not_found_exception")
    d.add_index(POOL, mapping_body({"visual": 2}))  # created after our add was refused
    OpenSearchIndex(d, prefix="mi").upsert([doc("seg_1", "idx_a", [1.0, 0.0])])
    assert d.methods()[:5] == [
        "indices.get_alias",
        "indices.update_aliases",
        "indices.create",  # answered resource_already_exists
        "indices.update_aliases",
        "indices.get_mapping",
    ]
    assert d.indexes[POOL]["aliases"]["mi-idx_a"]["routing"] == "idx_a"
    assert set(d.docs(POOL)) == {"seg_1"}


def test_keys_whose_vectors_differ_go_to_different_pools() -> None:
    d = FakeDomain()
    index = OpenSearchIndex(d, prefix="mi", precision="byte")
    index.upsert([doc("seg_1", "idx_a", [1.0, 0.0])])
    index.upsert(
        [SearchDoc("seg_2", "ten_a", "idx_b", "ast_1", "video", 0, 1, vectors={"visual": ("m", [1.0] * 3)})]
    )
    assert sorted(d.indexes) == ["mi-pool-faiss-byte-visual2-0", "mi-pool-faiss-byte-visual3-0"]


def test_a_pooled_key_whose_vectors_change_dims_is_refused() -> None:
    d = FakeDomain()
    index = OpenSearchIndex(d, prefix="mi")
    index.upsert([doc("seg_1", "idx_a", [1.0, 0.0])])
    with pytest.raises(ValidationError, match="re-index"):
        index.upsert(
            [
                SearchDoc(
                    "seg_2", "ten_a", "idx_a", "ast_1", "video", 0, 1, vectors={"visual": ("m", [1.0] * 3)}
                )
            ]
        )


def test_deleting_an_asset_goes_through_the_keys_alias() -> None:
    d = FakeDomain()
    index = OpenSearchIndex(d, prefix="mi")
    index.upsert([doc("seg_1", "idx_a", [1.0, 0.0]), doc("seg_2", "idx_b", [1.0, 0.0])])
    index.upsert([doc("seg_3", "idx_a", [0.0, 1.0], asset="ast_2")])
    index.delete_asset("ten_a", "ast_1", index_id="idx_a")
    (call,) = [kw for m, kw in d.calls if m == "delete_by_query"]
    assert call["index"] == "mi-idx_a"  # the alias applies its filter and its routing
    # Only idx_a's copy of the asset went; the same asset under idx_b stays.
    assert set(d.docs(POOL)) == {"seg_2", "seg_3"}


def test_dropping_a_pooled_key_deletes_its_documents_and_alias_but_never_the_pool() -> None:
    d = FakeDomain()
    index = OpenSearchIndex(d, prefix="mi", refresh="wait_for")
    index.upsert([doc("seg_1", "idx_a", [1.0, 0.0]), doc("seg_2", "idx_a-g2", [1.0, 0.0])])
    d.calls.clear()
    index.delete_index("ten_a", "idx_a")
    assert d.calls == [
        ("indices.get_alias", {"name": "mi-idx_a"}),
        (
            "delete_by_query",
            {
                "index": POOL,
                "body": drop_key_body("ten_a", "idx_a"),
                "conflicts": "proceed",
                "ignore_unavailable": True,
                "routing": "idx_a",
                "refresh": True,
            },
        ),
        ("indices.update_aliases", {"body": {"actions": [{"remove": {"index": POOL, "alias": "mi-idx_a"}}]}}),
    ]
    assert set(d.docs(POOL)) == {"seg_2"}
    assert set(d.indexes[POOL]["aliases"]) == {"mi-idx_a-g2"}
    assert knn(index, "idx_a") == [] and knn(index, "idx_a-g2") == ["seg_2"]
    # A key dropped already (or never written) is nothing to do.
    d.calls.clear()
    index.delete_index("ten_a", "idx_a")
    assert d.calls == [("indices.get_alias", {"name": "mi-idx_a"})]


def test_a_failed_drop_keeps_the_alias_for_the_retry() -> None:
    d = FakeDomain()
    index = OpenSearchIndex(d, prefix="mi")
    index.upsert([doc("seg_1", "idx_a", [1.0, 0.0])])
    d.fail["delete_by_query"] = HttpError(503)
    with pytest.raises(UnavailableError, match="delete failed"):
        index.delete_index("ten_a", "idx_a")
    assert "mi-idx_a" in d.indexes[POOL]["aliases"]
    d.fail["indices.update_aliases"] = HttpError(500)
    with pytest.raises(UnavailableError, match="drop failed"):
        index.delete_index("ten_a", "idx_a")
    index.delete_index("ten_a", "idx_a")
    assert d.docs(POOL) == {} and d.indexes[POOL]["aliases"] == {}


def test_a_key_of_the_previous_release_keeps_its_own_index() -> None:
    d = legacy_domain()
    index = OpenSearchIndex(d, prefix="mi")
    # Read, written and searched where it is, with no pool made and no routing added
    index.upsert([doc("seg_new", "idx_old", [1.0, 0.0])])
    assert sorted(d.indexes) == ["mi-idx_old-g1"]
    assert d.docs("mi-idx_old-g1")["seg_new"][0] is None
    assert sorted(knn(index, "idx_old")) == ["seg_new", "seg_old"]
    index.delete_asset("ten_a", "ast_1", index_id="idx_old")
    assert "routing" not in next(kw for m, kw in d.calls if m == "delete_by_query")
    # Dropped as before: its physical index deleted whole
    d.calls.clear()
    index.delete_index("ten_a", "idx_old")
    assert d.calls == [
        ("indices.get_alias", {"name": "mi-idx_old"}),
        ("indices.delete", {"index": "mi-idx_old-g1", "ignore_unavailable": True}),
    ]
    assert d.indexes == {}


def test_with_pools_off_or_on_serverless_a_new_key_gets_an_index_of_its_own() -> None:
    for serverless, pools in ((False, 0), (True, 4)):
        d = FakeDomain()
        index = OpenSearchIndex(d, prefix="mi", serverless=serverless, pools=pools)
        index.upsert([doc("seg_1", "idx_a", [1.0, 0.0])])
        assert sorted(d.indexes) == ["mi-idx_a-g1"]
        assert d.indexes["mi-idx_a-g1"]["aliases"] == {"mi-idx_a": {}}


def test_pools_spread_keys_by_the_setting() -> None:
    d = FakeDomain()
    index = OpenSearchIndex(d, prefix="mi", pools=4)
    index.upsert([doc(f"seg_{i}", f"idx_{i}", [1.0, 0.0]) for i in range(40)])
    assert sorted(d.indexes) == [f"mi-pool-faiss-fp32-visual2-{n}" for n in range(4)]
    assert sum(len(d.docs(name)) for name in d.indexes) == 40
    with pytest.raises(ValueError, match="pools"):
        OpenSearchIndex(d, pools=-1)


@pytest.mark.parametrize(
    ("method", "error", "message"),
    [
        ("indices.get_alias", HttpError(503), "unreachable"),
        ("indices.update_aliases", HttpError(500), "could not prepare"),
        ("indices.create", HttpError(400, "illegal_argument_exception"), "could not prepare"),
    ],
)
def test_a_pool_that_cannot_be_prepared_is_unavailable(method: str, error: Exception, message: str) -> None:
    d = FakeDomain()
    if method == "indices.create":
        d.fail["indices.update_aliases"] = HttpError(404, "index_not_found_exception")
    d.fail[method] = error
    with pytest.raises(UnavailableError, match=message):
        OpenSearchIndex(d, prefix="mi").upsert([doc("seg_1", "idx_a", [1.0, 0.0])])
    assert "bulk" not in d.methods()


def test_make_visible_on_a_pooled_key_refreshes_through_its_alias() -> None:
    d = FakeDomain()
    index = OpenSearchIndex(d, prefix="mi")
    index.upsert([doc("seg_1", "idx_a-g2", [1.0, 0.0])])
    index.make_visible("idx_a-g2")
    assert d.calls[-1] == ("indices.refresh", {"index": "mi-idx_a-g2"})
