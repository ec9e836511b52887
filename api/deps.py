"""What the endpoints depend on, as ``Annotated`` aliases: each is a function of the app's
state that a test can replace through ``app.dependency_overrides``.

They are ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per
dependency per request for what is an attribute read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from api.guards import WRONG_KEY, key_matches
from api.metrics import ServiceMetrics
from api.model_store import ChampionStore, LoadedModel
from api.prediction_log import PredictionLog
from api.settings import ApiSettings
from ml.features import FeatureSpec
from ml.registry import CHAMPION, REGISTERED_MODEL


async def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


async def get_feature_spec(request: Request) -> FeatureSpec:
    return request.app.state.spec


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


async def get_store(request: Request) -> ChampionStore:
    return request.app.state.store


async def get_prediction_log(request: Request) -> PredictionLog:
    return request.app.state.prediction_log


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
SpecDep = Annotated[FeatureSpec, Depends(get_feature_spec)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
StoreDep = Annotated[ChampionStore, Depends(get_store)]
PredictionLogDep = Annotated[PredictionLog, Depends(get_prediction_log)]


async def get_champion(store: StoreDep) -> LoadedModel:
    """The champion held now; 503 when there is none."""
    model = store.model
    if model is None:
        raise HTTPException(
            status_code=503, detail=f"No champion model ({REGISTERED_MODEL}@{CHAMPION}) loaded"
        )
    return model


ChampionDep = Annotated[LoadedModel, Depends(get_champion)]

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)


async def require_api_key(
    settings: SettingsDep, provided: Annotated[str | None, Security(API_KEY_HEADER)] = None
) -> None:
    """401 unless the ``X-API-Key`` header holds the configured key (none configured: open).

    ``api.guards`` has already refused a wrong key before the body was read; this declares
    the key in the OpenAPI document (when one is configured) and checks it again."""
    if not key_matches(settings.api_key, provided):
        raise HTTPException(status_code=401, detail=WRONG_KEY)


#: For a route's ``dependencies=[...]``: the key is checked, nothing is passed on.
ApiKeyChecked = Depends(require_api_key)
