"""The Reference renders what a reader needs beyond types: field descriptions, which key an
operation takes, and how each security scheme is sent."""

from __future__ import annotations

from mediaindex.contract_doc import render_reference

DOC = {
    "paths": {
        "/v1/things": {
            "get": {
                "summary": "List things",
                "security": [{"bearerAuth": []}, {"apiKeyHeader": []}],
                "responses": {"200": {"description": "OK"}},
            }
        },
        "/v1/health": {"get": {"summary": "Health", "responses": {"200": {"description": "OK"}}}},
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key."},
            "apiKeyHeader": {
                "type": "apiKey",
                "in": "header",
                "name": "x-api-key",
                "description": "The same key.",
            },
            "other": {"type": "openIdConnect"},
        },
        "schemas": {
            "Thing": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "description": "The thing's id."},
                    "n": {"type": "integer"},
                },
            }
        },
    },
}


def test_operations_say_which_keys_they_take() -> None:
    text = render_reference(DOC)
    things = text.split("#### `GET /v1/things`")[1].split("####")[0]
    assert "Auth: `bearerAuth` or `apiKeyHeader` (see the security schemes below)." in things
    health = text.split("#### `GET /v1/health`")[1].split("####")[0]
    assert "Auth:" not in health


def test_security_schemes_say_how_each_is_sent() -> None:
    text = render_reference(DOC)
    assert "| `bearerAuth` | http | `Authorization: Bearer <credentials>` | An API key. |" in text
    assert "| `apiKeyHeader` | apiKey | header `x-api-key` | The same key. |" in text
    assert "| `other` | openIdConnect |  |  |" in text
    assert text.index("### Security schemes") < text.index("### Schemas")


def test_schema_fields_carry_their_descriptions() -> None:
    text = render_reference(DOC)
    assert "| `id` | string | yes |  | The thing's id. |" in text
    assert "| `n` | integer | no |  |  |" in text


def test_a_document_without_security_schemes_has_no_such_section() -> None:
    assert "Security schemes" not in render_reference({"paths": {}, "components": {"schemas": {}}})
