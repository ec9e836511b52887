"""The scoring service: the champion model over REST, and a page for people.

``uvicorn api.main:app`` serves the app built from the environment (``api/settings.py``);
tests call ``create_app(ApiSettings(...))``. The service never opens the DuckDB warehouse.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from api.errors import readable_validation_errors
from api.lifespan import lifespan
from api.metrics import RequestMetricsMiddleware, ServiceMetrics
from api.routes import features, health, model, page
from api.routes.predict import predict_router
from api.schemas import build_road_user_model
from api.settings import ApiSettings
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
    )
    app.state.settings = settings
    app.state.spec = spec
    app.state.metrics = ServiceMetrics()  # one registry per app: tests build several
    app.add_middleware(RequestMetricsMiddleware)
    app.add_exception_handler(RequestValidationError, readable_validation_errors)
    road_user = build_road_user_model(spec)
    app.include_router(predict_router(spec, road_user))
    app.include_router(model.router)
    app.include_router(features.router)
    app.include_router(health.router)
    app.include_router(page.router)
    add_request_models_to_openapi(app, road_user)
    return app


def add_request_models_to_openapi(app: FastAPI, road_user) -> None:
    """/predict reads its body by hand (off the event loop), so FastAPI does not know its
    model: put ``RoadUser`` in the schema's components, where the route's body refers to it."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {})["RoadUser"] = (
                road_user.model_json_schema(ref_template="#/components/schemas/{model}")
            )
        return app.openapi_schema

    app.openapi = openapi


app = create_app()
