"""Schemathesis over the OpenAPI document, against the service in a real uvicorn: generated
valid and invalid requests for every operation; no 5xx, and every answer as documented
(status, content type, headers, body schema)."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.servers import uvicorn_server

pytestmark = pytest.mark.attack

#: Per operation and generation mode, bounded to well under a minute on a shared two-core machine.
EXAMPLES = 150


@pytest.fixture(scope="module")
def api_schema(champion, tmp_path_factory):
    with uvicorn_server(champion.tracking_uri, tmp_path_factory.mktemp("predictions")) as server:
        yield schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_answer_is_documented_and_none_is_a_server_error(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "POST /predict",
        "GET /model",
        "POST /model/reload",
        "GET /model/refresh",
        "GET /features",
        "GET /calendar",
        "GET /health",
        "GET /monitoring/data",
    }
    if mode == GenerationMode.NEGATIVE:  # only /predict takes an input that can be wrong
        operations = [op for op in operations if op.path == "/predict"]
    answered: Counter[str] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def answered_as_documented(case):
            response = case.call_and_validate(timeout=30)
            answered[f"{case.method} {case.path} {response.status_code}"] += 1

        answered_as_documented()
    print(f"{mode.value}: {sum(answered.values())} requests, {dict(sorted(answered.items()))}")
