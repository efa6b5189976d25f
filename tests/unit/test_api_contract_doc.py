"""docs/api.md is the HTTP contract, and it cannot drift from what the server serves:

- its generated Reference is exactly a fresh render of the served OpenAPI document;
- every `METHOD /v1/...` its prose names is served, and every served /v1 operation is named;
- neither it nor the README points outside the repository;
- the renderer is deterministic and only ever rewrites the text between its markers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mediaindex.contract_doc import (
    BEGIN_MARKER,
    END_MARKER,
    REGENERATE,
    diff,
    generated_section,
    operations,
    prose,
    render_reference,
    served_openapi,
    type_of,
    update_document,
)

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "api.md"

# `POST /v1/assets/{id}/upload/parts` as written in prose; the path ends at a space, a backtick,
# a quote, a bracket, punctuation or a query string.
PROSE_OPERATION = re.compile(r"\b(GET|PUT|POST|PATCH|DELETE|HEAD|OPTIONS) (/v1/[^\s`'\"?)\],;]*)")
OUTSIDE_THE_REPO = ("../", "/work/", "shared/")


def shape(path: str) -> str:
    """Path parameters matched by position, whatever their names: `/v1/assets/{id}` and
    `/v1/assets/{asset_id}` are both `/v1/assets/{}`."""
    return re.sub(r"\{[^}/]*\}", "{}", path.rstrip("/") or "/")


def named_in_prose(doc_text: str) -> set[tuple[str, str]]:
    return {(m, shape(p)) for m, p in PROSE_OPERATION.findall(prose(doc_text))}


def served_v1(openapi: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, shape(p)) for m, p, _ in operations(openapi) if p.startswith("/v1/")}


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    return served_openapi()


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


# ---- (a) the generated Reference is the served OpenAPI -----------------------------------------
def test_the_generated_reference_is_a_fresh_render_of_the_served_openapi(
    served: dict[str, Any], doc_text: str
) -> None:
    # Given the contract on disk and the OpenAPI document the app serves
    section = generated_section(doc_text)
    assert section is not None, f"docs/api.md has no {BEGIN_MARKER} ... {END_MARKER} section"

    # When the Reference is rendered afresh from the served document
    fresh = render_reference(served)

    # Then the section on disk says exactly that
    assert section == fresh, (
        f"docs/api.md is stale: run `{REGENERATE}` (or `make api-doc`) and commit the result.\n"
        + diff(section, fresh, "docs/api.md generated section")
    )


# ---- (b) the prose names what is served, and all of it ------------------------------------------
def test_every_operation_the_prose_names_is_served(served: dict[str, Any], doc_text: str) -> None:
    # Given the operations the prose of docs/api.md names
    named = named_in_prose(doc_text)
    assert len(named) >= 20, f"expected the prose to name the operations, found only {sorted(named)}"

    # When they are looked up in the served OpenAPI (path parameters matched by position)
    unknown = named - served_v1(served)

    # Then each is served with that method
    assert not unknown, (
        "docs/api.md names operations the server does not serve (fix the prose or the routes): "
        + ", ".join(f"{m} {p}" for m, p in sorted(unknown))
    )


def test_every_served_v1_operation_is_named_in_the_prose(served: dict[str, Any], doc_text: str) -> None:
    # Given every /v1 operation of the served OpenAPI
    offered = served_v1(served)
    assert offered, "the served OpenAPI has no /v1 operation"

    # When the prose of docs/api.md is searched for each
    unnamed = offered - named_in_prose(doc_text)

    # Then none is left undocumented
    assert not unnamed, (
        "the server serves operations the prose of docs/api.md does not describe: "
        + ", ".join(f"{m} {p}" for m, p in sorted(unnamed))
    )


def test_the_prose_checks_catch_a_drift_either_way() -> None:
    # Given a served document with two operations
    openapi: dict[str, Any] = {
        "paths": {
            "/v1/things": {"get": {"responses": {}}},
            "/v1/things/{thing_id}": {"delete": {"responses": {}}},
        }
    }

    # When the prose forgets one and names one that is not served
    text = "List: `GET /v1/things?limit=`. Gone: `POST /v1/things/{id}/archive`.\n"

    # Then both directions report it, and a parameter's name does not matter
    assert named_in_prose(text) - served_v1(openapi) == {("POST", "/v1/things/{}/archive")}
    assert served_v1(openapi) - named_in_prose(text) == {("DELETE", "/v1/things/{}")}
    assert named_in_prose("`DELETE /v1/things/{id}`") <= served_v1(openapi)


def test_operations_in_the_generated_section_do_not_count_as_prose() -> None:
    text = f"Prose: `GET /v1/a`.\n{BEGIN_MARKER}\n#### `POST /v1/b`\n{END_MARKER}\nMore: `PATCH /v1/c`.\n"
    assert named_in_prose(text) == {("GET", "/v1/a"), ("PATCH", "/v1/c")}


# ---- (c) nothing points outside the repository ------------------------------------------------
@pytest.mark.parametrize("name", ["docs/api.md", "README.md"])
def test_no_link_or_path_points_outside_the_repository(name: str) -> None:
    # Given a document a user's clone carries
    lines = (REPO / name).read_text(encoding="utf-8").splitlines()

    # When it is searched for links and paths that only resolve on a development machine
    outside = [
        f"{name}:{n}: {line.strip()}"
        for n, line in enumerate(lines, start=1)
        if any(bad in line for bad in OUTSIDE_THE_REPO)
    ]

    # Then there are none
    assert not outside, "these point outside the repository (a clone has no ../shared):\n" + "\n".join(
        outside
    )


# ---- (d) the renderer ---------------------------------------------------------------------------
def tiny_openapi() -> dict[str, Any]:
    """A hand-made OpenAPI document, its paths, methods and schemas deliberately out of order."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "tiny", "version": "1"},
        "paths": {
            "/v1/widgets/{widget_id}": {
                "delete": {
                    "summary": "Delete Widget",
                    "parameters": [
                        {"name": "widget_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "404": {"description": "Not Found", **error},
                        "204": {"description": "Deleted"},
                    },
                },
                "get": {
                    "summary": "Get Widget",
                    "parameters": [
                        {"name": "widget_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "The widget",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Widget"}}
                            },
                        }
                    },
                },
            },
            "/v1/widgets": {
                "post": {
                    "summary": "Create Widget",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/WidgetCreate"}}
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Created",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Widget"}}
                            },
                        },
                        "400": {"description": "Invalid request", **error},
                    },
                },
                "get": {
                    "summary": "List Widgets",
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 20}}
                    ],
                    "responses": {"200": {"description": "A page"}},
                },
            },
        },
        "components": {
            "schemas": {
                "WidgetCreate": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Widget": {
                    "type": "object",
                    "required": ["id", "color"],
                    "properties": {
                        "id": {"type": "string"},
                        "color": {"$ref": "#/components/schemas/Color"},
                        "made_at": {"type": "string", "format": "date-time"},
                    },
                },
                "Error": {"type": "object", "properties": {"code": {"type": "string"}}},
                "Color": {"type": "string", "enum": ["red", "blue"]},
            }
        },
    }


def reordered(openapi: dict[str, Any]) -> dict[str, Any]:
    """The same document with every path, method, status and schema in reverse insertion order."""
    paths = {
        p: {
            m: {**op, "responses": dict(reversed(op["responses"].items()))}
            for m, op in reversed(item.items())
        }
        for p, item in reversed(openapi["paths"].items())
    }
    schemas = dict(reversed(openapi["components"]["schemas"].items()))
    return {**openapi, "paths": paths, "components": {"schemas": schemas}}


def test_rendering_is_deterministic_whatever_the_order_of_the_input() -> None:
    # Given the same document twice, once in another order
    openapi = tiny_openapi()

    # When each is rendered
    first, again, other_order = (
        render_reference(openapi),
        render_reference(openapi),
        render_reference(reordered(openapi)),
    )

    # Then the text is the same, ending in one newline
    assert first == again == other_order
    assert first.endswith("\n") and not first.endswith("\n\n")


def test_operations_come_sorted_by_path_then_method() -> None:
    text = render_reference(tiny_openapi())
    headings = re.findall(r"^#### `([A-Z]+ /\S+)`$", text, flags=re.MULTILINE)
    assert headings == [
        "GET /v1/widgets",
        "POST /v1/widgets",
        "DELETE /v1/widgets/{widget_id}",
        "GET /v1/widgets/{widget_id}",
    ]


def test_an_operation_shows_summary_parameters_body_and_responses() -> None:
    # Given the create operation of the tiny document
    text = render_reference(tiny_openapi())

    # When its part of the Reference is read
    create = text.split("#### `POST /v1/widgets`", 1)[1].split("####", 1)[0]

    # Then it states the summary, each parameter, the body's schema and each response
    assert "Create Widget." in create
    assert "| `Idempotency-Key` | header | no | string or null |  |  |" in create
    assert "Request body (required):" in create and "- `application/json`: WidgetCreate" in create
    assert "| 201 | Created | `application/json`: Widget |" in create
    assert "| 400 | Invalid request | `application/json`: Error |" in create
    # and responses are in status order, a body-less one saying so
    delete = text.split("#### `DELETE /v1/widgets/{widget_id}`", 1)[1].split("####", 1)[0]
    assert delete.index("| 204 | Deleted | no body |") < delete.index("| 404 | Not Found |")
    assert "| `widget_id` | path | yes | string |  |  |" in delete
    assert "| `limit` | query | no | integer | `20` |  |" in text


def test_schemas_are_listed_by_name_with_typed_and_required_properties() -> None:
    text = render_reference(tiny_openapi())
    schemas = text.split("### Schemas", 1)[1]
    names = re.findall(r"^#### `(\w+)`$", schemas, flags=re.MULTILINE)
    assert names == ["Color", "Error", "Widget", "WidgetCreate"]
    assert "Enum (string): `red`, `blue`." in schemas
    assert "| `color` | Color | yes |  |" in schemas
    assert "| `made_at` | string (date-time) | no |  |" in schemas
    assert "| `tags` | array of string | no |  |" in schemas


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({}, "any"),
        ({"$ref": "#/components/schemas/AssetOut"}, "AssetOut"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "integer or null"),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, "map of string to integer"),
        ({"const": "PUT", "type": "string"}, '"PUT"'),
        ({"type": "string", "enum": ["json", "vtt"]}, '"json" or "vtt"'),
        ({"type": ["string", "null"]}, "string or null"),
        ({"type": "array"}, "array"),
    ],
)
def test_type_names(schema: dict[str, Any], expected: str) -> None:
    assert type_of(schema) == expected


def test_update_replaces_only_the_text_between_the_markers() -> None:
    # Given a document with hand-written text around a stale generated section
    before, after = "# Title\n\nProse with `GET /v1/widgets`.\n\n", "\n\nClosing words.\n"
    doc = f"{before}{BEGIN_MARKER}\nstale, hand-edited text\n{END_MARKER}{after}"

    # When it is updated from the tiny document
    updated = update_document(doc, tiny_openapi())

    # Then the section is the fresh render, the rest is byte-for-byte the same,
    assert generated_section(updated) == render_reference(tiny_openapi())
    assert "stale, hand-edited text" not in updated
    assert updated.startswith(before + BEGIN_MARKER) and updated.endswith(END_MARKER + after)
    # and updating again changes nothing
    assert update_document(updated, tiny_openapi()) == updated


def test_a_document_without_markers_gets_the_section_appended() -> None:
    updated = update_document("# Title\n\nProse.\n", tiny_openapi())
    assert updated.startswith("# Title\n\nProse.\n\n" + BEGIN_MARKER)
    assert generated_section(updated) == render_reference(tiny_openapi())


@pytest.mark.parametrize(
    "broken",
    [
        f"{END_MARKER}\n{BEGIN_MARKER}\n",
        f"{BEGIN_MARKER}\nno end\n",
        f"{BEGIN_MARKER}\n{END_MARKER}\n{BEGIN_MARKER}\n{END_MARKER}\n",
    ],
)
def test_broken_markers_are_refused_rather_than_guessed(broken: str) -> None:
    with pytest.raises(ValueError, match="GENERATED"):
        update_document(broken, tiny_openapi())
