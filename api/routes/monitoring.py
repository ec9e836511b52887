"""GET /monitoring (the page) and GET /monitoring/data: drift per feature and day, the mix
of predicted classes per day, the newest accident year against the earlier ones, and the
champion's history (versions and aliases, as of the last look at the registry)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.deps import SettingsDep, StoreDep
from api.monitoring import MonitoringDataError, read_monitoring
from api.routes.page import STATIC_DIR
from api.schemas import ErrorMessage
from ml.registry import REGISTERED_MODEL

router = APIRouter(tags=["monitoring"])


class FeatureDrift(BaseModel):
    logged_on: dt.date
    feature: str
    feature_kind: str = Field(description="numeric (training deciles) or categorical (codes).")
    requests: int
    psi: float = Field(description="Population stability index against the training rows.")
    largest_shift_bin: str | None
    largest_shift_training_share: float | None
    largest_shift_request_share: float | None
    is_above_threshold: bool


class PredictionMix(BaseModel):
    logged_on: dt.date
    model_version: str
    predicted_severity: int
    predicted_severity_label: str
    predictions: int
    share: float = Field(description="Share of the version's predictions that day.")


class YearDrift(BaseModel):
    newest_year: int
    reference_years: str
    feature: str
    feature_kind: str
    newest_year_rows: int
    reference_rows: int
    psi: float
    largest_shift_bin: str | None
    largest_shift_reference_share: float | None
    largest_shift_newest_share: float | None
    is_above_threshold: bool


class VersionEntry(BaseModel):
    version: str
    aliases: list[str]
    registered_at: str
    trained_at: str | None = None
    promotion_decision: str | None = None
    promotion_reason: str | None = None
    decided_at: str | None = None


class Monitoring(BaseModel):
    model_name: str
    champion_version: str | None = Field(description="The champion the service holds.")
    model_version: str | None = Field(description="The version the prediction mix is kept to, if asked.")
    alert_threshold: float | None = Field(
        description="A PSI above it is flagged (dbt var psi_alert_threshold)."
    )
    drift_by_day: list[FeatureDrift]
    prediction_mix: list[PredictionMix]
    newest_year_drift: list[YearDrift]
    champion_history: list[VersionEntry]
    notes: list[str] = Field(description="Why a part is empty.")


@router.get("/monitoring", include_in_schema=False)
def monitoring_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "monitoring.html")


@router.get(
    "/monitoring/data",
    response_model=Monitoring,
    responses={
        404: {"model": ErrorMessage, "description": "`model_version` is not a registered version"},
        503: {"model": ErrorMessage, "description": "A monitoring file exists but cannot be read"},
    },
    summary="Drift per feature and day, predictions per class and day, newest year against the "
    "earlier ones, champion history",
)
async def monitoring_data(
    settings: SettingsDep,
    store: StoreDep,
    model_version: Annotated[
        str | None,
        Query(max_length=20, description="Keep the prediction mix to this registered version."),
    ] = None,
) -> Monitoring:
    history = store.history
    known = {entry.version for entry in history}
    if model_version is not None and model_version not in known:
        listed = ", ".join(sorted(known, key=int)) if known else "none known yet"
        raise HTTPException(
            status_code=404,
            detail=f"No version {model_version!r} of {REGISTERED_MODEL}; registered versions: {listed}",
        )
    try:
        data = await run_in_threadpool(read_monitoring, settings.monitoring_dir, model_version)
    except MonitoringDataError as error:
        raise HTTPException(status_code=503, detail=f"Monitoring data unreadable: {error}") from error
    champion = store.model
    notes = list(data.notes)
    if not history:
        notes.append(f"No registered version of {REGISTERED_MODEL} seen in the registry yet.")
    return Monitoring(
        model_name=REGISTERED_MODEL,
        champion_version=champion.version if champion else None,
        model_version=model_version,
        alert_threshold=data.alert_threshold,
        drift_by_day=data.drift_by_day,
        prediction_mix=data.prediction_mix,
        newest_year_drift=data.newest_year_drift,
        champion_history=[
            VersionEntry(**{**entry.__dict__, "aliases": list(entry.aliases)}) for entry in history
        ],
        notes=notes,
    )
