"""Imported first by ``api.main``, the module uvicorn loads: in a worker of several, turns on
prometheus_client's multiprocess mode, which must happen before prometheus_client is first
imported (``api.workers``). Only the server imports it: a process that merely uses a part of
the service (the Dagster assets that compact the prediction log) is left alone."""

from api.settings import api_metrics_dir
from api.workers import share_metrics_between_workers

#: This server's metrics folder, or None in a process of its own.
SHARED_METRICS_DIR = share_metrics_between_workers(api_metrics_dir())
