"""Prometheus metrics of the service, in a registry of its own (one per app instance), or,
in a worker of several, added up over every worker (``api.workers``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.workers import shared_metrics_dir


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        #: Set in a worker of several: every worker's samples are read from there.
        self.shared_dir: Path | None = shared_metrics_dir()
        self.requests = Counter(
            "baac_api_requests", "HTTP requests", ["method", "path", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "baac_api_request_latency_seconds", "Request latency", ["method", "path"], registry=self.registry
        )
        self.predictions = Counter(
            "baac_api_predictions",
            "Road users scored, by predicted severity",
            ["severity"],
            registry=self.registry,
        )
        self.log_failures = Counter(
            "baac_api_prediction_log_failures",
            "Predictions refused because the log could not be written",
            registry=self.registry,
        )
        #: Set from the store at start, at each watcher tick and when /metrics is scraped:
        #: alerting needs it (/health answers 503 without a champion, but nothing scrapes
        #: /health). Several workers: the lowest of those running, so one without a champion shows.
        self.champion_loaded = Gauge(
            "baac_api_champion_loaded",
            "1 when a champion model is loaded (predictions are served), else 0",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.errors = Counter(
            "baac_api_errors",
            "Requests answered with an error, by status",
            ["path", "status"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text ``/metrics`` answers: this process's registry, or every worker's samples."""
        if self.shared_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.shared_dir))
        return generate_latest(registry)

    def process_exits(self) -> None:
        """At a worker's exit: its live gauges no longer count (its counters still do)."""
        if self.shared_dir is not None:
            mark_process_dead(os.getpid(), str(self.shared_dir))


class RequestMetricsMiddleware:
    """Count every request by route and status, time it, count errors. A plain ASGI
    middleware: Starlette's ``BaseHTTPMiddleware`` (``app.middleware("http")``) costs a
    task and a stream per request, a good part of a single prediction's time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics: ServiceMetrics = scope["app"].state.metrics
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception is a 500 too

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = scope.get("route")  # set by the router on this same scope
            path = route.path if route else "unmatched"
            method = scope["method"]
            metrics.latency.labels(method, path).observe(time.perf_counter() - started)
            metrics.requests.labels(method, path, str(status)).inc()
            if status >= 400:
                metrics.errors.labels(path, str(status)).inc()
