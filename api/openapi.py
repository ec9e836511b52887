"""The OpenAPI document, made to say what the service does.

FastAPI's generated document is completed once, at its first request: the ``RoadUser``
model (``/predict`` reads its body by hand), the example road user (``examples/road_user.json``,
a real row of the data: the README's curl sends the same file), the ``X-API-Key`` scheme only
when a key is configured, and no 422 where nothing can fail validation.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from api.schemas import ErrorMessage, ValidationErrors

#: The example road user: a real row of the sample's training split (``python -m ml.examples``
#: writes it); the README's ``curl -d @api/examples/road_user.json`` sends it.
ROAD_USER_EXAMPLE = Path(__file__).resolve().parent / "examples" / "road_user.json"

_WHEN = {
    400: "The body is not JSON (or not UTF-8)",
    401: "Missing or wrong `X-API-Key` header (only when `BAAC_API_KEY` is set), checked before "
    "the body is read",
    409: "A refresh is already running",
    413: "The body is larger than `BAAC_API_MAX_BODY_BYTES` (16 MiB by default; a 10,000-user "
    "batch is about 9 MB)",
    415: "The body is not `application/json`",
    422: "JSON, but not road users the model can score: each error names the field, what was sent "
    "and, for a code, every allowed code with its label",
    503: "No champion model loaded, or the prediction log cannot be written",
}


def error_responses(*statuses: int, when: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: each error status it can answer, with its body model;
    ``when`` says what a status means on this route when it differs from ``_WHEN``."""
    when = {**_WHEN, **(when or {})}
    return {
        status: {"model": ValidationErrors if status == 422 else ErrorMessage, "description": when[status]}
        for status in statuses
    }


@cache
def road_user_example() -> dict[str, Any]:
    """The example road user, as the file holds it."""
    return json.loads(ROAD_USER_EXAMPLE.read_text(encoding="utf-8"))


def complete_openapi(app: FastAPI, road_user, api_key_required: bool, json_body_paths: set[str]) -> None:
    """Replace ``app.openapi`` by FastAPI's document completed as the module docstring says."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            example = road_user_example()
            schemas["RoadUser"] = {
                **road_user.model_json_schema(ref_template="#/components/schemas/{model}"),
                "examples": [example],
            }
            for path, operations in schema["paths"].items():
                for operation in operations.values():
                    _complete_operation(operation, example, api_key_required, path in json_body_paths)
            if not api_key_required:
                schema["components"].pop("securitySchemes", None)
            used = json.dumps(schema["paths"])
            for unused in ("HTTPValidationError", "ValidationError"):
                if f'/{unused}"' not in used:
                    schemas.pop(unused, None)
        return app.openapi_schema

    app.openapi = openapi


def _complete_operation(operation: dict, example: dict, api_key_required: bool, json_body: bool) -> None:
    responses = operation.get("responses", {})
    if not api_key_required:
        operation.pop("security", None)
        responses.pop("401", None)
    if not json_body:  # FastAPI adds a 422 for any header parameter: here it cannot happen
        responses.pop("422", None)
        return
    media = operation["requestBody"]["content"]["application/json"]
    media["examples"] = {
        "one road user": {"summary": "A real road user of the data (an object)", "value": example},
        "a batch": {"summary": "A list of road users (here one)", "value": [example]},
    }
