"""POST /predict: score one road user or a batch, each prediction logged before it is answered.

The request models are generated from the feature specification the app is built with, so
this router is built by a function. No ``from __future__ import annotations`` here: FastAPI
reads the endpoint's annotations, which name types local to ``predict_router``.

Nothing heavy runs on the event loop: FastAPI would parse and validate a declared body
there (a 10,000-row batch is hundreds of milliseconds in which ``/health`` could not
answer), so the endpoint reads the raw body and hands it to a worker thread, which parses,
validates (the same models, the same 422s), scores, logs and writes the answer.
"""

import json
import logging
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from api.batch_reader import RoadUserReader
from api.deps import ApiKeyChecked, ChampionDep
from api.errors import clean_validation_errors
from api.metrics import ServiceMetrics
from api.model_store import LoadedModel
from api.openapi import error_responses
from api.prediction_log import PredictionLog, PredictionLogError, format_rows, new_request_id
from api.schemas import (
    MAX_BATCH_SIZE,
    BatchPredictionResponse,
    PredictionResponse,
)
from api.scoring import encode_road_users, explanation_dicts, predict_severity, prediction_dicts
from ml.features import FeatureSpec
from ml.registry import REGISTERED_MODEL

log = logging.getLogger("baac.api")

#: explain=true on a champion stored without its reference road user (trained before
#: ``ml.explain`` existed): a clear refusal, the prediction alone still being available.
NO_REFERENCE = (
    "Champion version {version} was trained before explanations existed: it has no reference road "
    "user (data/reference_road_user.json in its MLflow run). Call /predict without explain=true, "
    "or train a new version."
)
#: explain=true on a batch larger than ``BAAC_EXPLAIN_MAX_BATCH``.
EXPLAIN_TOO_MANY = (
    "explain=true explains at most {limit:,} road users per request (BAAC_EXPLAIN_MAX_BATCH); this "
    "batch holds {rows:,}: send it in smaller batches, or without explain=true"
)
EXPLAIN_409 = "explain=true, but the champion was stored without the reference road user explanations need"


def log_predictions(
    prediction_log: PredictionLog,
    metrics: ServiceMetrics,
    spec: FeatureSpec,
    inputs,
    scores,
    model: LoadedModel,
) -> None:
    """Append the predictions to the log and wait for them to be on disk, or refuse them:
    503 when the log cannot be written."""
    logged_at = datetime.now(UTC)
    header, lines = format_rows(
        logged_at,
        new_request_id(),
        spec.names,
        inputs,
        scores.predicted,
        [spec.classes[c] for c in scores.classes],
        scores.probabilities,
        REGISTERED_MODEL,
        model.version,
    )
    try:
        prediction_log.append(logged_at.date(), header, lines)
    except PredictionLogError as error:
        metrics.log_failures.inc()
        log.error("Could not write the prediction log under %s: %s", prediction_log.directory, error)
        raise HTTPException(status_code=503, detail=f"Prediction log unavailable: {error}") from error
    for label, count in Counter(scores.predicted.tolist()).items():
        metrics.predictions.labels(spec.classes[label]).inc(count)


class MalformedBody(ValueError):
    """The body cannot be read as JSON at all (400); JSON with wrong values is a 422."""


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def loads_in_steps(body: bytes):
    """``json.loads``, but a top-level list is decoded one item at a time: one C call over a
    10,000-row body would hold the GIL (and so the event loop) for its whole length."""
    text = body.decode("utf-8")
    i = _WHITESPACE.match(text, 0).end()
    if not text.startswith("[", i):
        return json.loads(text)
    items: list = []
    i = _WHITESPACE.match(text, i + 1).end()
    if text.startswith("]", i):
        i += 1
    else:
        while True:
            item, i = _DECODER.raw_decode(text, i)
            items.append(item)
            i = _WHITESPACE.match(text, i).end()
            if text.startswith(",", i):
                i = _WHITESPACE.match(text, i + 1).end()
            elif text.startswith("]", i):
                i += 1
                break
            else:
                raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
    if _WHITESPACE.match(text, i).end() != len(text):
        raise json.JSONDecodeError("Extra data", text, i)
    return items


def request_body_schema(road_user_ref: str) -> dict:
    """The OpenAPI request body: one road user or a list of them (the body is read by hand)."""
    item = {"$ref": road_user_ref}
    batch = {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_BATCH_SIZE}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"anyOf": [item, batch]}}},
        }
    }


def predict_router(spec: FeatureSpec, RoadUser) -> APIRouter:
    """The /predict route, taking the road users of ``spec`` (``RoadUser``, from
    ``api.schemas.build_road_user_model``)."""
    body_type = TypeAdapter(
        RoadUser | Annotated[list[RoadUser], Field(min_length=1, max_length=MAX_BATCH_SIZE)]
    )
    router = APIRouter(tags=["predict"])
    reader = RoadUserReader(spec)

    def parse(body: bytes):
        """The body as FastAPI would read it: JSON, then the request models; errors located
        under ``body`` as FastAPI does, for ``api.errors`` to make readable."""
        if not body:
            raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
        try:
            payload = loads_in_steps(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise MalformedBody(f"The body is not JSON in UTF-8: {error}") from error
        try:
            return body_type.validate_python(payload, from_attributes=True)  # as FastAPI does
        except ValidationError as error:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
            raise RequestValidationError(errors) from error

    def answer(
        body: bytes,
        model: LoadedModel,
        metrics: ServiceMetrics,
        prediction_log: PredictionLog,
        top: int | None = None,
        explain_max_batch: int = 0,
    ):
        """The answer to a body; with ``top`` (explain=true), each prediction's ``top`` reasons,
        for at most ``explain_max_batch`` road users."""
        read = reader.read(body)  # a valid body, read fast; else the request models judge it
        if read is None:
            try:
                parsed = parse(body)
            except MalformedBody as error:
                return JSONResponse(status_code=400, content={"detail": str(error)})
            except RequestValidationError as error:
                # Made readable here, in the worker thread: a batch can carry thousands of errors.
                errors = clean_validation_errors(list(error.errors()), spec)
                return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})
            is_batch = isinstance(parsed, list)
            inputs = encode_road_users(parsed if is_batch else [parsed], spec)
        else:
            inputs, is_batch = read
        if top is not None and model.reference is None:  # refused before anything is logged
            return JSONResponse(
                status_code=409, content={"detail": NO_REFERENCE.format(version=model.version)}
            )
        if top is not None and len(inputs) > explain_max_batch:  # refused before anything is logged
            return JSONResponse(
                status_code=422,
                content={"detail": EXPLAIN_TOO_MANY.format(rows=len(inputs), limit=explain_max_batch)},
            )
        scores = predict_severity(model.scorer, inputs, spec)
        if not np.isfinite(scores.probabilities).all():  # never logged nor sent (JSON has no NaN)
            raise RuntimeError(f"Champion version {model.version} gave a probability that is not a number")
        log_predictions(prediction_log, metrics, spec, inputs, scores, model)  # logged before answered
        predictions = prediction_dicts(scores, spec)
        if top is not None:
            for prediction, explanation in zip(
                predictions, explanation_dicts(model.scorer, model.reference, inputs, spec, top), strict=True
            ):
                prediction["explanation"] = explanation
        ref = {"name": REGISTERED_MODEL, "version": model.version}
        content = {"predictions": predictions, "model": ref} if is_batch else {**predictions[0], "model": ref}
        # pydantic-core's serializer: 6 ms for a 10,000-row answer, against 32 ms for json.dumps.
        return Response(to_json(content), media_type="application/json")

    @router.post(
        "/predict",
        response_model=PredictionResponse | BatchPredictionResponse,
        dependencies=[ApiKeyChecked],
        openapi_extra=request_body_schema("#/components/schemas/RoadUser"),
        responses=error_responses(400, 401, 409, 413, 415, 422, 503, when={409: EXPLAIN_409}),
        summary=f"Score one road user (an object) or a batch (a list of at most {MAX_BATCH_SIZE:,})",
    )
    async def predict(
        request: Request,
        model: ChampionDep,
        explain: Annotated[
            bool,
            Query(
                description="Also say why: per road user, the features that pushed P(severe) up or "
                "down, in points, each replaced in turn by the reference road user's value."
            ),
        ] = False,
        top: Annotated[
            int | None,
            Query(
                ge=1,
                le=len(spec.names),
                description="With explain=true: how many reasons per road user "
                "(default `BAAC_EXPLAIN_TOP`, 5).",
            ),
        ] = None,
    ):
        # The metrics and the log are read from the app's state, not declared: each declared
        # dependency costs FastAPI's resolver time on every request.
        state = request.app.state
        body = await request.body()
        reasons = (top or state.settings.explain_top) if explain else None
        return await run_in_threadpool(
            answer,
            body,
            model,
            state.metrics,
            state.prediction_log,
            reasons,
            state.settings.explain_max_batch,
        )

    return router
