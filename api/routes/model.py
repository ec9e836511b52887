"""GET /model (the champion held), POST /model/reload (look for a new champion now, in the
background) and GET /model/refresh (how that went)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import ApiKeyChecked, ChampionDep, StoreDep
from api.model_store import LoadedModel, RefreshStatus
from api.openapi import error_responses
from api.schemas import ModelInfo, RefreshInfo, ReloadAccepted
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


def refresh_info(status: RefreshStatus | None) -> RefreshInfo | None:
    if status is None:
        return None
    return RefreshInfo(
        running=status.running,
        started_at=status.started_at,
        finished_at=status.finished_at,
        outcome=status.outcome,
        error=status.error,
    )


@router.get(
    "",
    response_model=ModelInfo,
    responses=error_responses(503),
    summary="The champion: version, training data, test metrics",
)
async def get_model(model: ChampionDep) -> ModelInfo:
    return model_info(model)


@router.post(
    "/reload",
    status_code=202,
    response_model=ReloadAccepted,
    dependencies=[ApiKeyChecked],
    responses=error_responses(401, 409),
    summary="Look for a new champion now, in the background (it is also picked up on its own)",
)
async def reload_model(store: StoreDep) -> ReloadAccepted:
    """Answers at once: 202 when a refresh started (with the model served meanwhile), 409
    when one is already running. ``GET /model/refresh`` tells how it went.

    With several workers, it reaches the one that answers (``X-Worker-Pid``) and reloads that
    one; the others find the new champion at their next look (``BAAC_MODEL_REFRESH_SECONDS``)."""
    if not store.start_refresh():
        held = store.model.version if store.model else "none"
        raise HTTPException(
            status_code=409,
            detail=f"A refresh is already running (for {store.running_for():.0f} s); "
            f"serving version {held} meanwhile",
        )
    return ReloadAccepted(status="refresh started", model=model_info(store.model) if store.model else None)


@router.get("/refresh", response_model=RefreshInfo | None, summary="The refresh running, or the last one")
async def refresh_status(store: StoreDep) -> RefreshInfo | None:
    return refresh_info(store.refresh_running or store.last_refresh)
