"""POST /predict: score one road user or a batch, each prediction logged before it is answered.

The request models are generated from the feature specification the app is built with, so
this router is built by a function. No ``from __future__ import annotations`` here: FastAPI
reads the endpoint's annotations, which name types local to ``predict_router``.
"""

import logging
from collections import Counter

import pandas as pd
from fastapi import APIRouter, HTTPException

from api.deps import ApiKeyChecked, ChampionDep, MetricsDep, SettingsDep
from api.metrics import ServiceMetrics
from api.model_store import LoadedModel
from api.prediction_log import write_prediction_log
from api.schemas import (
    MAX_BATCH_SIZE,
    BatchPredictionResponse,
    ModelRef,
    Prediction,
    PredictionResponse,
    build_road_user_model,
    road_user_batch,
)
from api.scoring import encode_road_users, predict_severity
from api.settings import ApiSettings
from ml.features import FeatureSpec
from ml.registry import REGISTERED_MODEL

log = logging.getLogger("baac.api")


def log_predictions(
    settings: ApiSettings,
    metrics: ServiceMetrics,
    inputs: pd.DataFrame,
    predictions: list[Prediction],
    model: LoadedModel,
) -> None:
    """Append the predictions to the log, or refuse them: 503 when the log cannot be written."""
    try:
        write_prediction_log(
            settings.prediction_log_dir,
            inputs,
            [p.severity for p in predictions],
            [p.probabilities for p in predictions],
            REGISTERED_MODEL,
            model.version,
        )
    except OSError as error:
        metrics.log_failures.inc()
        log.exception("Could not write the prediction log under %s", settings.prediction_log_dir)
        raise HTTPException(status_code=503, detail=f"Prediction log unavailable: {error}") from error
    for label, count in Counter(p.label for p in predictions).items():
        metrics.predictions.labels(label).inc(count)


def predict_router(spec: FeatureSpec) -> APIRouter:
    """The /predict route, taking the road users of ``spec``."""
    RoadUser = build_road_user_model(spec)
    RoadUserBatch = road_user_batch(RoadUser)
    router = APIRouter(tags=["predict"])

    @router.post(
        "/predict",
        response_model=PredictionResponse | BatchPredictionResponse,
        dependencies=[ApiKeyChecked],
        summary=f"Score one road user (an object) or a batch (a list of at most {MAX_BATCH_SIZE:,})",
    )
    def predict(
        body: RoadUser | RoadUserBatch,
        model: ChampionDep,
        settings: SettingsDep,
        metrics: MetricsDep,
    ):
        road_users = body if isinstance(body, list) else [body]
        inputs = encode_road_users(road_users, spec)
        predictions = predict_severity(model.estimator, inputs, spec)
        log_predictions(settings, metrics, inputs, predictions, model)  # logged before answered
        ref = ModelRef(name=REGISTERED_MODEL, version=model.version)
        if isinstance(body, list):
            return BatchPredictionResponse(predictions=predictions, model=ref)
        return PredictionResponse(**predictions[0].model_dump(), model=ref)

    return router
