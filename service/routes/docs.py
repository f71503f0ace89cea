"""The interactive API documentation at `/docs`, served whole by the API itself.

FastAPI's own page loads Swagger UI from a CDN, which a bank's isolated network cannot reach:
the page then shows no operation. Here Swagger UI's files come from an installed package
(`swagger-ui-bundle-v2`, the official Swagger UI distribution) under `/docs/assets/`, and
nothing on the page asks another host for anything (no validator badge, no remote favicon).
ReDoc is not served: it, too, would come from a CDN, and `/docs` covers the same ground."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` and its assets (create the app with `docs_url=None, redoc_url=None`)."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API documentation",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            # Swagger UI would otherwise send the whole document to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
