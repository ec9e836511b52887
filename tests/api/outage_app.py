"""``uvicorn --factory tests.api.outage_app:create``: the service as ``api.main`` builds it,
whose registry, once the champion is loaded, becomes ``OUTAGE_REGISTRY_URI`` (a server that
accepts connections and never answers, or a closed port): a registry that went down."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mlflow import MlflowClient

from api.main import create_app
from api.settings import ApiSettings


def create() -> FastAPI:
    app = create_app(ApiSettings.from_env())
    serve = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with serve(app) as state:
            uri = os.environ["OUTAGE_REGISTRY_URI"]
            app.state.store.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            yield state

    app.router.lifespan_context = lifespan
    return app
