"""The scoring service: the champion model over REST, and a page for people.

``uvicorn api.main:app`` serves the app built from the environment (``api/settings.py``);
tests call ``create_app(ApiSettings(...))``. The service never opens the DuckDB warehouse.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

import api.multiprocess_metrics  # noqa: F401 (first of ours: see its docstring)
from api.deps import require_api_key
from api.errors import readable_validation_errors
from api.guards import GuardedPaths, RequestGuardMiddleware
from api.lifespan import lifespan
from api.metrics import RequestMetricsMiddleware, ServiceMetrics
from api.openapi import complete_openapi
from api.routes import docs, features, health, model, monitoring, page
from api.routes.predict import predict_router
from api.schemas import build_road_user_model
from api.settings import ApiSettings
from api.workers import WorkerPidMiddleware
from ml.features import load_feature_spec
from ml.registry import CHAMPION, REGISTERED_MODEL


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The app for ``settings`` (default: from the environment). The champion is loaded when
    the app starts (its lifespan), not here."""
    settings = settings or ApiSettings.from_env()
    spec = load_feature_spec(settings.dbt_project_dir)
    app = FastAPI(
        title="Road-accident severity",
        description="Scores road users involved in an injury accident in France with the champion "
        f"model `{REGISTERED_MODEL}@{CHAMPION}` (BAAC data, ONISR).",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,  # served offline by api.routes.docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.spec = spec
    app.state.metrics = ServiceMetrics()  # one registry per app: tests build several
    app.add_exception_handler(RequestValidationError, readable_validation_errors)
    road_user = build_road_user_model(spec)
    routers = [
        predict_router(spec, road_user),
        model.router,
        features.router,
        health.router,
        page.router,
        monitoring.router,
    ]
    for router in [*routers, docs.router]:
        app.include_router(router)
    app.mount(docs.STATIC_DOCS_URL, StaticFiles(directory=str(docs.STATIC_DOCS_DIR)), name="static-docs")
    paths = guarded_paths(routers)
    # Added first, so it runs inside the metrics middleware: its 401/413/415 are counted.
    app.add_middleware(
        RequestGuardMiddleware, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes, paths=paths
    )
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(WorkerPidMiddleware)  # outermost: every answer says which worker sent it
    complete_openapi(app, road_user, bool(settings.api_key), set(paths.json_body))
    return app


def guarded_paths(routers: list[APIRouter]) -> GuardedPaths:
    """The paths whose routes declare the API key, and those that read a JSON body (a body
    declared to FastAPI, or one the route reads by hand and declares in ``openapi_extra``)."""
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    return GuardedPaths(
        key_required=frozenset(
            r.path for r in routes if any(d.dependency is require_api_key for d in r.dependencies)
        ),
        json_body=frozenset(
            r.path for r in routes if r.body_field is not None or "requestBody" in (r.openapi_extra or {})
        ),
    )


app = create_app()
