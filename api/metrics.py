"""Prometheus metrics of the service, in a registry of its own (one per app instance)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        #: Set when /metrics is scraped, from the store: alerting needs it (/health answers 503
        #: without a champion, but nothing scrapes /health).
        self.champion_loaded = Gauge(
            "baac_api_champion_loaded",
            "1 when a champion model is loaded (predictions are served), else 0",
            registry=self.registry,
        )
        self.errors = Counter(
            "baac_api_errors",
            "Requests answered with an error, by status",
            ["path", "status"],
            registry=self.registry,
        )


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
