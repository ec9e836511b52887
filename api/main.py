"""The scoring service: the champion model over REST, and a page for people.

``uvicorn api.main:app`` serves the app built from the environment (``api/settings.py``);
tests call ``create_app(ApiSettings(...))``. The service never opens the DuckDB warehouse.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from api.errors import readable_validation_errors
from api.lifespan import lifespan
from api.metrics import ServiceMetrics, record_request_metrics
from api.routes import features, health, model, page
from api.routes.predict import predict_router
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
    app.middleware("http")(record_request_metrics)
    app.add_exception_handler(RequestValidationError, readable_validation_errors)
    app.include_router(predict_router(spec))
    app.include_router(model.router)
    app.include_router(features.router)
    app.include_router(health.router)
    app.include_router(page.router)
    return app


app = create_app()
