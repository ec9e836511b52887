"""The scoring service (FastAPI): ``uvicorn api.main:app``.

Run as one of several workers (``--workers N``), its Prometheus metrics must be shared
between the processes, a mode prometheus_client chooses when it is first imported: it is
chosen here, before any module of the service runs (``api.workers``).
"""

from api.settings import api_metrics_dir
from api.workers import share_metrics_between_workers

share_metrics_between_workers(api_metrics_dir())
