"""Prometheus metrics of the service, in a registry of its own (one per app instance)."""

from __future__ import annotations

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
