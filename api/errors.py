"""Readable 422s: the field, what was sent and, for a code, every allowed code with its label.

/predict takes one road user or a list of them; pydantic reports the failures of both
readings. Only the reading that matches the body's shape is kept.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ml.features import FeatureSpec

_SHAPE_ERRORS = {"list_type", "model_type", "dict_type", "model_attributes_type"}


def _echoable(value: Any) -> bool:
    """What was sent, if it is a scalar JSON can carry back (not NaN, not a whole object)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool) or value is None


def _branch(loc: tuple) -> str | None:
    return loc[1] if len(loc) > 1 and isinstance(loc[1], str) and "RoadUser" in loc[1] else None


def clean_validation_errors(errors: list[dict[str, Any]], spec: FeatureSpec) -> list[dict[str, Any]]:
    """Drop the other union branch's errors, strip the branch names from ``loc``, and name
    the allowed values of a code field."""
    branches = {_branch(tuple(e["loc"])) for e in errors} - {None}
    if len(branches) > 1:  # both readings failed: keep the one whose shape matched
        # A shape error at a branch's root (loc = ("body", branch)) means the body is not
        # that shape at all; deeper ones are about its items.
        wrong_shape = {
            _branch(tuple(e["loc"])) for e in errors if e["type"] in _SHAPE_ERRORS and len(e["loc"]) == 2
        }
        kept = branches - wrong_shape or branches
        errors = [e for e in errors if _branch(tuple(e["loc"])) in kept | {None}]
    cleaned = []
    for error in errors:
        loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "RoadUser" in part))
        item = {"loc": list(loc), "type": error["type"], "msg": error["msg"]}
        field = loc[-1] if loc and isinstance(loc[-1], str) else None
        if error["type"] != "missing" and "input" in error and _echoable(error["input"]):
            item["input"] = error["input"]
        if field in spec.names and spec[field].is_categorical:
            feature = spec[field]
            item["allowed"] = {str(code): label for code, label in sorted(feature.codes.items())}
            item["msg"] = (
                f"{field}: {error['msg']}; allowed codes ({feature.codebook_entry}): "
                + ", ".join(f"{c} = {label}" for c, label in sorted(feature.codes.items()))
                + ", or null (not recorded)"
            )
        elif field in spec.names:
            item["msg"] = f"{field}: {error['msg']}"
        cleaned.append(item)
    return cleaned


async def readable_validation_errors(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The app's handler of request validation errors: 422 with the cleaned errors."""
    errors = clean_validation_errors(list(exc.errors()), request.app.state.spec)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})
