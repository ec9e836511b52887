"""GET /health (is a champion loaded?) and GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import MetricsDep, StoreDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(store: StoreDep, response: Response) -> Health:
    model = store.model
    if model is None:
        response.status_code = 503
        return Health(status="no champion model loaded")
    return Health(status="ok", model_version=model.version)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(metrics: MetricsDep, store: StoreDep) -> Response:
    metrics.champion_loaded.set(0 if store.model is None else 1)
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
