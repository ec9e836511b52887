"""Prometheus metrics of the service, in a registry of its own (one per app instance)."""

from __future__ import annotations

import time

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Histogram


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
        self.errors = Counter(
            "baac_api_errors",
            "Requests answered with an error, by status",
            ["path", "status"],
            registry=self.registry,
        )


async def record_request_metrics(request: Request, call_next):
    """HTTP middleware: count every request by route and status, time it, count errors."""
    metrics: ServiceMetrics = request.app.state.metrics
    started = time.perf_counter()
    status = 500  # unless a response comes back: an exception is a 500 too
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = request.scope.get("route")
        path = route.path if route else "unmatched"
        metrics.latency.labels(request.method, path).observe(time.perf_counter() - started)
        metrics.requests.labels(request.method, path, str(status)).inc()
        if status >= 400:
            metrics.errors.labels(path, str(status)).inc()
