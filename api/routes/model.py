"""GET /model (the champion held) and POST /model/reload (load the current champion now)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from mlflow.exceptions import MlflowException

from api.deps import ApiKeyChecked, ChampionDep, StoreDep, get_champion
from api.model_store import LoadedModel
from api.schemas import ModelInfo
from ml.registry import CHAMPION, REGISTERED_MODEL

router = APIRouter(prefix="/model", tags=["model"])


def model_info(model: LoadedModel) -> ModelInfo:
    return ModelInfo(
        name=REGISTERED_MODEL,
        version=model.version,
        alias=CHAMPION,
        run_id=model.run_id,
        trained_at=model.trained_at,
        data=model.data,
        test_metrics=model.test_metrics,
    )


@router.get("", response_model=ModelInfo, summary="The champion: version, training data, test metrics")
def get_model(model: ChampionDep) -> ModelInfo:
    return model_info(model)


@router.post(
    "/reload",
    response_model=ModelInfo,
    dependencies=[ApiKeyChecked],
    summary="Load the current champion now (it is also picked up on its own)",
)
def reload_model(store: StoreDep) -> ModelInfo:
    try:
        store.refresh()
    except MlflowException as error:  # keep serving the model held
        raise HTTPException(status_code=503, detail=f"Model registry unreachable: {error.message}") from error
    return model_info(get_champion(store))
