"""Which search index a runtime gets: the embedded one by default, OpenSearch by setting alone
(the local runtime's upgrade path), refused at start when its layout settings cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaindex.adapters.aws.opensearch_index import OpenSearchIndex
from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex
from mediaindex.bootstrap.local import build_local
from mediaindex.bootstrap.search import build_search_index
from tests.functional.conftest import make_settings


def test_the_local_runtime_uses_the_embedded_index_unless_told_otherwise(tmp_path: Path) -> None:
    runtime = build_local(make_settings(tmp_path / "a"))
    try:
        assert isinstance(runtime.search_index, EmbeddedSearchIndex)
    finally:
        runtime.close()


def test_the_local_runtime_moves_onto_opensearch_by_setting(tmp_path: Path) -> None:
    # Nothing is contacted at start: the client is made on the first search or write.
    runtime = build_local(
        make_settings(tmp_path / "b", opensearch_url="http://127.0.0.1:9", opensearch_shards=3)
    )
    try:
        assert isinstance(runtime.search_index, OpenSearchIndex)
        assert not (tmp_path / "b" / "search").exists()  # no embedded index was opened beside it
    finally:
        runtime.close()


def test_a_layout_opensearch_would_refuse_fails_at_start(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        opensearch_url="http://127.0.0.1:9",
        opensearch_engine="lucene",
        opensearch_vector_precision="fp16",
    )
    with pytest.raises(ValueError):
        build_search_index(settings)
