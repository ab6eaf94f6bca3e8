"""``/docs``: the Swagger UI page, its JavaScript, CSS and icon served by the server itself.

FastAPI's default page loads Swagger UI from a CDN, which leaves it blank on an air-gapped machine.
The assets come from the ``swagger-ui-bundle-v2`` package (a ``[server]`` dependency, Swagger UI 5,
which reads FastAPI's OpenAPI 3.1), so nothing third-party is copied into this repository.
The validator badge is off: it would send the schema to validator.swagger.io.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs-assets"


def add_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs from local files; the app must be built with ``docs_url=None``."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})
