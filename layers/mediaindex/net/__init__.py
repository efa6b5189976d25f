"""Outbound HTTP that users point at (asset_url, query_image_url): the SSRF guard and its fetchers."""
