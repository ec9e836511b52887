"""GET /docs (Swagger UI) and GET /redoc (ReDoc), served with their scripts from this service.

FastAPI's own pages load Swagger UI and ReDoc from a CDN: blank on a machine without
internet. The files come from the ``fastapi-offline`` package (MIT; it ships the
``swagger-ui-dist`` 5 bundle, Apache-2.0, and ReDoc 2's standalone bundle, MIT) and are
mounted at ``STATIC_DOCS_URL`` by ``api.main``.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

#: Where the Swagger UI and ReDoc files are served.
STATIC_DOCS_URL = "/static-docs"
STATIC_DOCS_DIR = files("fastapi_offline") / "static"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app, root = request.app, request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}{STATIC_DOCS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{STATIC_DOCS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC_DOCS_URL}/favicon.png",
    )


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app, root = request.app, request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{STATIC_DOCS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{STATIC_DOCS_URL}/favicon.png",
        with_google_fonts=False,  # fonts from Google are the internet too
    )
