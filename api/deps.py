"""What the endpoints depend on, as ``Annotated`` aliases: each is a function of the app's
state that a test can replace through ``app.dependency_overrides``."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from api.metrics import ServiceMetrics
from api.model_store import ChampionStore, LoadedModel
from api.settings import ApiSettings
from ml.features import FeatureSpec
from ml.registry import CHAMPION, REGISTERED_MODEL


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def get_feature_spec(request: Request) -> FeatureSpec:
    return request.app.state.spec


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


def get_store(request: Request) -> ChampionStore:
    return request.app.state.store


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
SpecDep = Annotated[FeatureSpec, Depends(get_feature_spec)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
StoreDep = Annotated[ChampionStore, Depends(get_store)]


def get_champion(store: StoreDep) -> LoadedModel:
    """The champion held now; 503 when there is none."""
    model = store.model
    if model is None:
        raise HTTPException(
            status_code=503, detail=f"No champion model ({REGISTERED_MODEL}@{CHAMPION}) loaded"
        )
    return model


ChampionDep = Annotated[LoadedModel, Depends(get_champion)]

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)


def require_api_key(
    settings: SettingsDep, provided: Annotated[str | None, Security(API_KEY_HEADER)] = None
) -> None:
    """401 unless the ``X-API-Key`` header holds the configured key (none configured: open)."""
    expected = settings.api_key
    if expected and not (provided and secrets.compare_digest(provided.encode(), expected.encode())):
        raise HTTPException(status_code=401, detail="Missing or wrong X-API-Key header")


#: For a route's ``dependencies=[...]``: the key is checked, nothing is passed on.
ApiKeyChecked = Depends(require_api_key)
