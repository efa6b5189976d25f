"""The search index a runtime uses, from settings: OpenSearch (a managed domain, a Serverless
collection, or a cluster of one's own) when `opensearch_url` is set, else the embedded index in
the data dir. Both runtimes take it from here, so a laptop can grow onto OpenSearch by setting
MEDIAINDEX_OPENSEARCH_URL alone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from mediaindex.ports.search import SearchIndex
from mediaindex.settings import Settings

log = logging.getLogger(__name__)


def build_search_index(settings: Settings) -> tuple[SearchIndex, Callable[[], None] | None]:
    """The index and its closer (None when it holds nothing open)."""
    if settings.opensearch_url:
        from mediaindex.adapters.aws.clients import LazyClient
        from mediaindex.adapters.aws.opensearch_index import OpenSearchIndex, make_client

        host = urlsplit(settings.opensearch_url).hostname or ""
        serverless = host.endswith(".aoss.amazonaws.com")
        # Managed endpoints are SigV4-signed; a plain URL is a cluster of one's own (tests, dev).
        region = settings.aws_region if host.endswith(".amazonaws.com") else None
        url = settings.opensearch_url
        # Made on first use: opensearch-py costs ~0.3 s to import, and most requests never search.
        client = LazyClient(lambda: make_client(url, region=region, serverless=serverless), "opensearch")
        # The layout settings are checked here, at start: a combination OpenSearch would refuse
        # (fp16 on lucene) raises ValueError now rather than on the first write.
        opensearch = OpenSearchIndex(
            client,
            serverless=serverless,
            engine=settings.opensearch_engine,
            precision=settings.opensearch_vector_precision,
            refresh=settings.opensearch_refresh,
            shards=settings.opensearch_shards,
            pools=settings.opensearch_pools,
        )
        return opensearch, None
    from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex

    log.info("no opensearch_url: using the embedded search index in %s", settings.data_dir)
    index = EmbeddedSearchIndex(settings.data_dir / "search")
    return index, index.close
