"""The service's lifespan: load the champion once at start-up, then watch for a new one;
open the prediction log, and close it (pending lines committed) at shutdown. With several
workers each runs its own (``api.workers``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.metrics import ServiceMetrics
from api.model_store import ChampionStore
from api.prediction_log import PredictionLog
from api.settings import ApiSettings
from api.workers import shared_metrics_dir, supervisor_pid
from ml.registry import CHAMPION, REGISTERED_MODEL

log = logging.getLogger("baac.api")


def configure_registry_client(settings: ApiSettings) -> None:
    """MLflow's HTTP client waits 120 s per call and retries 7 times with back-off (about 4
    minutes for a registry that is down): the service gives up after
    ``registry_timeout_seconds`` and does not retry (the watcher tries again later), unless
    the user set ``MLFLOW_HTTP_REQUEST_TIMEOUT`` or ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``.
    MLflow reads them from the environment at each call: they hold for this process."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(settings.registry_timeout_seconds))))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def note_champion(metrics: ServiceMetrics, store: ChampionStore) -> None:
    metrics.champion_loaded.set(0 if store.model is None else 1)


async def watch_for_new_champion(store: ChampionStore, every_seconds: float, metrics: ServiceMetrics) -> None:
    """Start a refresh every ``every_seconds`` (in its own thread: see ``ChampionStore``),
    for as long as the service runs; one still running is left to finish. Each tick also
    notes whether this worker holds a champion (what the last refresh found)."""
    while True:
        await asyncio.sleep(every_seconds)
        note_champion(metrics, store)
        store.start_refresh()


def check_workers(settings: ApiSettings) -> None:
    """Warn when ``BAAC_API_WORKERS`` and how this process was started disagree: metrics are
    shared between workers only in a worker that uvicorn's supervisor spawned."""
    worker = supervisor_pid() is not None
    if settings.workers > 1 and not worker:
        log.warning(
            "BAAC_API_WORKERS=%d, but this process was not started by `uvicorn --workers`: "
            "it serves alone (make serve passes --workers)",
            settings.workers,
        )
    elif worker and shared_metrics_dir() is None:
        log.warning("A worker without shared metrics: /metrics shows this worker only")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Put a ``ChampionStore`` in ``app.state.store``, loaded once (never per request), and
    the ``PredictionLog`` in ``app.state.prediction_log``."""
    settings: ApiSettings = app.state.settings
    metrics: ServiceMetrics = app.state.metrics
    check_workers(settings)
    configure_registry_client(settings)
    store = ChampionStore(settings.tracking_uri, app.state.spec.names)
    try:
        store.refresh()
    except Exception:  # a registry down at start-up: start without a model, the watcher retries
        log.exception("Could not load %s@%s from %s", REGISTERED_MODEL, CHAMPION, settings.tracking_uri)
    if store.model is None:
        log.warning("No %s@%s in %s: /predict answers 503", REGISTERED_MODEL, CHAMPION, settings.tracking_uri)
    app.state.store = store
    note_champion(metrics, store)
    app.state.prediction_log = PredictionLog(
        settings.prediction_log_dir, commit_interval=settings.prediction_log_commit_ms / 1000
    )
    # Everything loaded so far (libraries, the model) lives as long as the process: out of the
    # cyclic collector's sight, a full collection (set off by a large batch's objects) no
    # longer walks it while holding the GIL, which stalled /health for hundreds of ms.
    gc.collect()
    gc.freeze()
    watcher = None
    if settings.refresh_seconds > 0:
        watcher = asyncio.create_task(watch_for_new_champion(store, settings.refresh_seconds, metrics))
    try:
        yield
    finally:
        if watcher:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        app.state.prediction_log.close()
        metrics.process_exits()
