"""The scoring service: the champion model over REST, and a page for people.

Configuration (environment): ``MLFLOW_TRACKING_URI`` (the registry; default the embedded
store under data/), ``BAAC_API_KEY`` (optional: when set, /predict and /model/reload need it
in the ``X-API-Key`` header), ``BAAC_MODEL_REFRESH_SECONDS`` (how often to look for a new
champion; 0 = only on /model/reload; default 60), ``BAAC_PREDICTION_LOG_DIR`` (default
data/predictions). The service never opens the DuckDB warehouse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from mlflow.exceptions import MlflowException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.errors import clean_validation_errors
from api.metrics import ServiceMetrics
from api.model_store import ChampionStore
from api.prediction_log import write_prediction_log
from api.schemas import (
    MAX_BATCH_SIZE,
    SPEC,
    BatchPredictionResponse,
    FeatureDescription,
    FeaturesResponse,
    Health,
    ModelInfo,
    ModelRef,
    Prediction,
    PredictionResponse,
    RoadUser,
    RoadUserBatch,
)
from ml.evaluation import severe_probability
from ml.features import model_input
from ml.registry import CHAMPION, REGISTERED_MODEL
from ml.training import class_probabilities
from orchestration import settings

log = logging.getLogger("baac.api")
STATIC_DIR = Path(__file__).with_name("static")
CLASSES = sorted(SPEC.classes)


def create_app(
    tracking_uri: str | None = None,
    api_key: str | None = None,
    refresh_seconds: float | None = None,
    prediction_log_dir: Path | None = None,
) -> FastAPI:
    """Build the app; arguments override the environment (tests use them)."""
    tracking_uri = tracking_uri or settings.mlflow_tracking_uri()
    api_key = api_key if api_key is not None else os.environ.get("BAAC_API_KEY") or None
    if refresh_seconds is None:
        refresh_seconds = float(os.environ.get("BAAC_MODEL_REFRESH_SECONDS", "60"))
    prediction_log_dir = prediction_log_dir or Path(
        os.environ.get("BAAC_PREDICTION_LOG_DIR", settings.DATA_DIR / "predictions")
    )
    metrics = ServiceMetrics()

    async def watch_for_new_champion(store: ChampionStore) -> None:
        while True:
            await asyncio.sleep(refresh_seconds)
            try:
                if await asyncio.to_thread(store.refresh):
                    log.info("Champion changed: now version %s", store.model and store.model.version)
            except Exception:  # the registry may be briefly unreachable: keep serving
                log.exception("Looking for a new champion failed")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = ChampionStore(tracking_uri)
        store.refresh()  # once, at start-up: never per request
        if store.model is None:
            log.warning("No %s@%s in %s: /predict answers 503", REGISTERED_MODEL, CHAMPION, tracking_uri)
        app.state.store = store
        watcher = asyncio.create_task(watch_for_new_champion(store)) if refresh_seconds > 0 else None
        yield
        if watcher:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    app = FastAPI(
        title="Road-accident severity",
        description="Scores road users involved in an injury accident in France with the champion "
        f"model `{REGISTERED_MODEL}@{CHAMPION}` (BAAC data, ONISR).",
        version="1.0.0",
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def record_metrics(request: Request, call_next):
        started = time.perf_counter()
        status = 500  # unless a response comes back: an exception is a 500 too
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = route.path if route else "unmatched"
            metrics.latency.labels(request.method, path).observe(time.perf_counter() - started)
            metrics.requests.labels(request.method, path, str(status)).inc()
            if status >= 400:
                metrics.errors.labels(path, str(status)).inc()

    @app.exception_handler(RequestValidationError)
    async def readable_validation_errors(request: Request, exc: RequestValidationError):
        errors = clean_validation_errors(list(exc.errors()), SPEC)
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})

    key_header = APIKeyHeader(name="X-API-Key", auto_error=False)

    def require_api_key(provided: str | None = Security(key_header)) -> None:
        if api_key and not (provided and secrets.compare_digest(provided.encode(), api_key.encode())):
            raise HTTPException(status_code=401, detail="Missing or wrong X-API-Key header")

    def champion(request: Request):
        model = request.app.state.store.model
        if model is None:
            raise HTTPException(
                status_code=503, detail=f"No champion model ({REGISTERED_MODEL}@{CHAMPION}) loaded"
            )
        return model

    def score(model, road_users: list) -> list[Prediction]:
        inputs = model_input(pd.DataFrame([u.model_dump() for u in road_users], columns=SPEC.names), SPEC)
        proba = class_probabilities(model.estimator, inputs, CLASSES)
        severe = severe_probability(proba, CLASSES)
        predictions = []
        for row, p_severe in zip(proba, severe, strict=True):
            code = CLASSES[int(row.argmax())]
            probabilities = {SPEC.classes[c]: float(p) for c, p in zip(CLASSES, row, strict=True)}
            predictions.append(
                Prediction(
                    severity=code,
                    label=SPEC.classes[code],
                    probabilities=probabilities,
                    severe_probability=float(p_severe),
                )
            )
        # Logged before answering: a prediction that cannot be logged is not served.
        try:
            write_prediction_log(
                prediction_log_dir,
                inputs,
                [p.severity for p in predictions],
                [p.probabilities for p in predictions],
                REGISTERED_MODEL,
                model.version,
            )
        except OSError as error:
            metrics.log_failures.inc()
            log.exception("Could not write the prediction log under %s", prediction_log_dir)
            raise HTTPException(status_code=503, detail=f"Prediction log unavailable: {error}") from error
        for prediction in predictions:
            metrics.predictions.labels(prediction.label).inc()
        return predictions

    @app.post(
        "/predict",
        response_model=PredictionResponse | BatchPredictionResponse,
        dependencies=[Depends(require_api_key)],
        summary=f"Score one road user (an object) or a batch (a list of at most {MAX_BATCH_SIZE:,})",
    )
    def predict(body: RoadUser | RoadUserBatch, model=Depends(champion)):
        ref = ModelRef(name=REGISTERED_MODEL, version=model.version)
        if isinstance(body, list):
            return BatchPredictionResponse(predictions=score(model, body), model=ref)
        (prediction,) = score(model, [body])
        return PredictionResponse(**prediction.model_dump(), model=ref)

    def model_info(model) -> ModelInfo:
        return ModelInfo(
            name=REGISTERED_MODEL,
            version=model.version,
            alias=CHAMPION,
            run_id=model.run_id,
            trained_at=model.trained_at,
            data=model.data,
            test_metrics=model.test_metrics,
        )

    @app.get("/model", response_model=ModelInfo, summary="The champion: version, training data, test metrics")
    def get_model(model=Depends(champion)):
        return model_info(model)

    @app.post(
        "/model/reload",
        response_model=ModelInfo,
        dependencies=[Depends(require_api_key)],
        summary="Load the current champion now (it is also picked up on its own)",
    )
    def reload_model(request: Request):
        try:
            request.app.state.store.refresh()
        except MlflowException as error:  # keep serving the model held
            raise HTTPException(
                status_code=503, detail=f"Model registry unreachable: {error.message}"
            ) from error
        return model_info(champion(request))

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health(request: Request, response: Response):
        model = request.app.state.store.model
        if model is None:
            response.status_code = 503
            return Health(status="no champion model loaded")
        return Health(status="ok", model_version=model.version)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/features", response_model=FeaturesResponse, summary="The fields /predict takes, with their codes"
    )
    def features(request: Request):
        model = request.app.state.store.model
        typical = model.typical_road_user if model else {}
        return FeaturesResponse(
            features=[
                FeatureDescription(
                    name=f.name,
                    kind=f.kind,
                    group=f.group,
                    description=f.description,
                    codes=f.codes or None,
                    minimum=f.minimum,
                    maximum=f.maximum,
                    whole=f.data_type == "integer",
                    typical=typical.get(f.name),
                )
                for f in SPEC.features
            ],
            classes=SPEC.classes,
            api_key_required=bool(api_key),
            max_batch_size=MAX_BATCH_SIZE,
        )

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC_DIR / "index.html")

    return app


app = create_app()
