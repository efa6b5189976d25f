"""The API docs at `/docs`: Swagger UI served from its Python package (swagger-ui-bundle-v2), so the
page needs nothing outside this server and renders under the app's strict Content-Security-Policy
(scripts and styles from 'self' only): the page holds no inline script or style, and its start-up
script is a file of its own (`/docs/init.js`). Without the package there is no `/docs`."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from mediaindex.api.lazy_routes import LazyRoute

ASSETS = "/docs/assets"
OPENAPI = "/v1/openapi.json"

# Swagger UI's own initializer, with the document's URL read from the page (no inline script).
INIT_JS = """\
"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
"""

router = APIRouter(include_in_schema=False, route_class=LazyRoute)


def assets_dir() -> Path | None:
    """Swagger UI's dist folder, or None when the package is not installed."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(str(swagger_ui_bundle.swagger_ui_path))


def _page(root: str) -> str:
    r = html.escape(root, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mediaindex API</title>
<link rel="stylesheet" href="{r}{ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{r}{ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{r}{OPENAPI}"></div>
<script src="{r}{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{r}{ASSETS}/swagger-ui-standalone-preset.js"></script>
<script src="{r}/docs/init.js"></script>
</body>
</html>
"""


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    # Paths are absolute from the app's root (an API Gateway stage, say), so `/docs/` works too.
    return HTMLResponse(_page(str(request.scope.get("root_path", "")).rstrip("/")))


@router.get("/docs/init.js")
def init_js() -> Response:
    return Response(INIT_JS, media_type="text/javascript; charset=utf-8")


def assets() -> StaticFiles | None:
    """The mount for Swagger UI's files at ASSETS, or None without the package."""
    found = assets_dir()
    return StaticFiles(directory=found) if found is not None and found.is_dir() else None
