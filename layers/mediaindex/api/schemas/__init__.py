"""The wire format of /v1, one module per resource: request bodies refuse unknown fields, and
responses are converted from entities here so internal fields (upload keys, versions, facts) never
leak. `base` holds what they share (Strict, OneOf, ErrorBody), then `indexes`, `assets`, `uploads`,
`outputs` (download URL, derivatives, segments), `tasks` and `meta` (health, usage,
capabilities). Every field carries a description: the OpenAPI document and /docs show them. The search
request and response are the search service's own values (domain.search), served as they are."""
