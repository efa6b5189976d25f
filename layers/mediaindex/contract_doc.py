"""docs/api.md's generated Reference: the served OpenAPI document rendered as Markdown.

The prose of docs/api.md is written by hand; the part between BEGIN_MARKER and END_MARKER is
`render_reference(served_openapi())`, so the document cannot drift from what the server serves.

    python -m mediaindex.contract_doc            # rewrite docs/api.md
    python -m mediaindex.contract_doc --check    # exit 1 with a diff when it is stale

Rendering is a pure function of the OpenAPI dict (operations sorted by path then method, schemas by
name), so the same document always gives the same text. Only `served_openapi` builds the app."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeGuard

BEGIN_MARKER = "<!-- BEGIN GENERATED: openapi -->"
END_MARKER = "<!-- END GENERATED: openapi -->"
DEFAULT_PATH = Path("docs/api.md")
REGENERATE = "python -m mediaindex.contract_doc"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_REF_PREFIX = "#/components/schemas/"
_PARAM_ORDER = {"path": 0, "query": 1, "header": 2, "cookie": 3}


def served_openapi() -> dict[str, Any]:
    """The OpenAPI document of the real app over the local runtime (no workers, a throwaway data
    dir). The one place here that knows how the app is composed."""
    import tempfile

    from mediaindex.bootstrap.app import build_app
    from mediaindex.bootstrap.local import build_local
    from mediaindex.settings import Settings

    with tempfile.TemporaryDirectory(prefix="mi-contract-doc-") as tmp:
        runtime = build_local(Settings(data_dir=Path(tmp), start_workers=False))
        try:
            doc = build_app(runtime, close_on_shutdown=False).openapi()
        finally:
            runtime.close()
    # A plain JSON copy: nothing of the app's cached document is shared or mutated.
    result: dict[str, Any] = json.loads(json.dumps(doc))
    return result


# ---- types --------------------------------------------------------------------------------------
def type_of(schema: Any) -> str:
    """A short, human type for a JSON schema: `string`, `AssetOut`, `array of string`,
    `map of string to integer`, `"PUT" or null`, `string (date-time)`."""
    if not isinstance(schema, dict) or not schema:
        return "any"
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(_REF_PREFIX)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            joiner = " and " if combinator == "allOf" else " or "
            return joiner.join(type_of(s) for s in schema[combinator])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " or ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(type_of({**schema, "type": k}) for k in kind)
    if kind == "array":
        return f"array of {type_of(schema['items'])}" if "items" in schema else "array"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not schema.get("properties"):
            return f"map of string to {type_of(extra)}"
        return "object"
    if kind is None:
        return "any"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _cell(value: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _default(schema: dict[str, Any]) -> str:
    return f"`{json.dumps(schema['default'])}`" if "default" in schema else ""


def _property_rows(schema: dict[str, Any]) -> list[list[str]]:
    required = set(schema.get("required", []))
    return [
        [
            f"`{name}`",
            type_of(prop),
            "yes" if name in required else "no",
            _default(prop),
            _one_line(prop.get("description", "")),
        ]
        for name, prop in schema.get("properties", {}).items()
    ]


_PROPERTY_HEADER = ("property", "type", "required", "default", "description")


# ---- operations ---------------------------------------------------------------------------------
def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every operation, sorted by path then method."""
    out = [
        (method.upper(), path, op)
        for path, item in openapi.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    ]
    return sorted(out, key=lambda t: (t[1], t[0]))


def _content_types(content: dict[str, Any]) -> str:
    parts = []
    for ctype in sorted(content):
        media = content[ctype] or {}
        parts.append(f"`{ctype}`: {type_of(media['schema'])}" if "schema" in media else f"`{ctype}`")
    return "; ".join(parts)


def _inline_object(schema: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(schema, dict) and "$ref" not in schema and bool(schema.get("properties"))


def _render_operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f"#### `{method} {path}`", ""]
    summary = _one_line(op.get("summary", ""))
    if summary:
        lines += [summary + ("" if summary.endswith(".") else "."), ""]
    if op.get("description"):
        lines += [_one_line(op["description"]), ""]
    if op.get("security"):
        schemes = " or ".join(f"`{name}`" for requirement in op["security"] for name in requirement)
        lines += [f"Auth: {schemes} (see the security schemes below).", ""]
    # Path parameters first, then query, header and cookie; each in the order the route declares.
    params = sorted(op.get("parameters", []), key=lambda p: _PARAM_ORDER.get(p.get("in", ""), 9))
    if params:
        rows = [
            [
                f"`{p.get('name', '')}`",
                p.get("in", ""),
                "yes" if p.get("required") else "no",
                type_of(p.get("schema")),
                _default(p.get("schema") or {}),
                _one_line(p.get("description", "")),
            ]
            for p in params
        ]
        lines += ["Parameters:", ""]
        lines += [*_table(("name", "in", "required", "type", "default", "description"), rows), ""]
    body = op.get("requestBody")
    if body:
        content = body.get("content", {})
        needed = "required" if body.get("required") else "optional"
        lines += [f"Request body ({needed}):", ""]
        for ctype in sorted(content):
            schema = (content[ctype] or {}).get("schema")
            name = type_of(schema)
            if _inline_object(schema) and schema.get("title"):
                name = f"{schema['title']} (inline object)"
            lines.append(f"- `{ctype}`: {name}")
        lines.append("")
        for ctype in sorted(content):
            schema = (content[ctype] or {}).get("schema")
            if _inline_object(schema):
                lines += [f"Fields of the `{ctype}` body:", ""]
                lines += [*_table(_PROPERTY_HEADER, _property_rows(schema)), ""]
    responses = op.get("responses", {})
    if responses:
        rows = []
        for status in sorted(responses, key=lambda s: (not s.isdigit(), s)):
            response = responses[status]
            content = response.get("content") or {}
            schema = _content_types(content) if content else "no body"
            rows.append([status, _one_line(response.get("description", "")), schema])
        lines += ["Responses:", ""]
        lines += [*_table(("status", "description", "body"), rows), ""]
    return lines


# ---- schemas ------------------------------------------------------------------------------------
def _render_schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"#### `{name}`", ""]
    if schema.get("description"):
        lines += [_one_line(schema["description"]), ""]
    if "enum" in schema:
        values = ", ".join(f"`{v}`" for v in schema["enum"])
        lines += [f"Enum ({schema.get('type', 'any')}): {values}.", ""]
    elif schema.get("properties"):
        lines += [*_table(_PROPERTY_HEADER, _property_rows(schema)), ""]
    else:
        lines += [f"Type: {type_of(schema)}.", ""]
    return lines


def _scheme_how(scheme: dict[str, Any]) -> str:
    if scheme.get("type") == "http":
        return f"`Authorization: {str(scheme.get('scheme', '')).capitalize()} <credentials>`"
    if scheme.get("type") == "apiKey":
        return f"{scheme.get('in', '')} `{scheme.get('name', '')}`"
    return ""


def render_reference(openapi: dict[str, Any]) -> str:
    """The generated section: every operation (by path, then method), the security schemes and
    every component schema (by name) of `openapi`, as Markdown. Deterministic; ends with one newline."""
    lines = ["### Operations", ""]
    for method, path, op in operations(openapi):
        lines += _render_operation(method, path, op)
    schemes = openapi.get("components", {}).get("securitySchemes", {})
    if schemes:
        lines += ["### Security schemes", ""]
        rows = [
            [f"`{n}`", s.get("type", ""), _scheme_how(s), _one_line(s.get("description", ""))]
            for n, s in sorted(schemes.items())
        ]
        lines += [*_table(("name", "type", "sent as", "description"), rows), ""]
    schemas = openapi.get("components", {}).get("schemas", {})
    lines += ["### Schemas", ""]
    for name in sorted(schemas):
        lines += _render_schema(name, schemas[name])
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


# ---- the document -------------------------------------------------------------------------------
def _marker_positions(doc_text: str) -> tuple[int, int] | None:
    begin, end = doc_text.find(BEGIN_MARKER), doc_text.find(END_MARKER)
    if begin < 0 and end < 0:
        return None
    if begin < 0 or end < 0 or end < begin:
        raise ValueError(f"the document needs {BEGIN_MARKER} before {END_MARKER}, each once")
    if doc_text.count(BEGIN_MARKER) > 1 or doc_text.count(END_MARKER) > 1:
        raise ValueError(f"the document needs {BEGIN_MARKER} before {END_MARKER}, each once")
    return begin, end


def generated_section(doc_text: str) -> str | None:
    """The text between the markers (without them and the blank lines around it), or None."""
    found = _marker_positions(doc_text)
    if found is None:
        return None
    begin, end = found
    return doc_text[begin + len(BEGIN_MARKER) : end].strip("\n") + "\n"


def prose(doc_text: str) -> str:
    """The hand-written part: the document without the generated section."""
    found = _marker_positions(doc_text)
    if found is None:
        return doc_text
    begin, end = found
    return doc_text[:begin] + doc_text[end + len(END_MARKER) :]


def update_document(doc_text: str, openapi: dict[str, Any]) -> str:
    """`doc_text` with its generated section replaced by a fresh render of `openapi`; text outside
    the markers is kept as it is. A document without markers gets the section appended."""
    block = f"{BEGIN_MARKER}\n\n{render_reference(openapi)}\n{END_MARKER}"
    found = _marker_positions(doc_text)
    if found is None:
        return doc_text.rstrip("\n") + "\n\n" + block + "\n"
    begin, end = found
    return doc_text[:begin] + block + doc_text[end + len(END_MARKER) :]


def diff(old: str, new: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"{path} (on disk)",
            f"{path} (served)",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mediaindex.contract_doc",
        description="Regenerate the Reference section of the HTTP contract from the served OpenAPI.",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if stale")
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_PATH, help=f"the document (default: {DEFAULT_PATH})"
    )
    args = parser.parse_args(argv)
    path: Path = args.path
    old = path.read_text(encoding="utf-8")
    new = update_document(old, served_openapi())
    if new == old:
        print(f"{path} is up to date")
        return 0
    if args.check:
        sys.stdout.write(diff(old, new, str(path)))
        print(f"{path} is stale: run `{REGENERATE}` (or `make api-doc`)", file=sys.stderr)
        return 1
    path.write_text(new, encoding="utf-8")
    print(f"{path} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
