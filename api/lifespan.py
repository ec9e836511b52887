"""The service's lifespan: load the champion once at start-up, then watch for a new one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.model_store import ChampionStore
from api.settings import ApiSettings
from ml.registry import CHAMPION, REGISTERED_MODEL

log = logging.getLogger("baac.api")


async def watch_for_new_champion(store: ChampionStore, every_seconds: float) -> None:
    """Look for a new champion every ``every_seconds``, for as long as the service runs."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            if await asyncio.to_thread(store.refresh):
                log.info("Champion changed: now version %s", store.model and store.model.version)
        except Exception:  # the registry may be briefly unreachable: keep serving
            log.exception("Looking for a new champion failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Put a ``ChampionStore`` in ``app.state.store``, loaded once (never per request)."""
    settings: ApiSettings = app.state.settings
    store = ChampionStore(settings.tracking_uri)
    store.refresh()
    if store.model is None:
        log.warning("No %s@%s in %s: /predict answers 503", REGISTERED_MODEL, CHAMPION, settings.tracking_uri)
    app.state.store = store
    watcher = None
    if settings.refresh_seconds > 0:
        watcher = asyncio.create_task(watch_for_new_champion(store, settings.refresh_seconds))
    yield
    if watcher:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
