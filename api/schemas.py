"""Request and response models; the request models are generated from the feature specification.

Each categorical feature accepts exactly the code book's codes (or null, "not recorded");
each numeric feature its declared range. Every feature is required, so a forgotten field
is a 422 that names it, never a silent default.
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    create_model,
)

from ml.features import Feature, FeatureSpec

#: Most road users one request may score.
MAX_BATCH_SIZE = 10_000


def _one_of(codes: dict[int, str]):
    def check(value: int) -> int:
        if value not in codes:
            raise ValueError(f"{value} is not one of the codes {', '.join(map(str, sorted(codes)))}")
        return value

    return AfterValidator(check)


def _whole(value: Any) -> Any:
    """A float with no fractional part (``79.0``) as the integer it is; anything else as sent,
    for the strict check to refuse. JSON has one number type, and JSON Schema's ``integer``
    (what the OpenAPI document says) is any number whose fractional part is zero."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A whole number: ``3`` or ``3.0``, never ``3.5``, ``"3"`` or ``true``. The before-validator
#: comes last: it wraps (runs before) the strict check and the bounds, which stay in the
#: integer's JSON schema as minimum/maximum.
WholeNumber = Annotated[int, Strict(), BeforeValidator(_whole)]


def _field_type(feature: Feature) -> Any:
    """Strict: a code is a whole JSON number (``3`` or ``3.0``, not ``true``, ``"3"`` or
    ``3.5``), a number a finite number."""
    if feature.is_categorical:
        codes = sorted(feature.codes)
        return Annotated[WholeNumber, _one_of(feature.codes), Field(json_schema_extra={"enum": codes})] | None
    # Bounds as annotated-types metadata: a ``Field`` nested in an ``Annotated`` alias would
    # reach the JSON schema as "ge"/"le", not "minimum"/"maximum".
    bounds = (Ge(feature.minimum), Le(feature.maximum))
    if feature.data_type == "integer":
        return Annotated[int, Strict(), *bounds, BeforeValidator(_whole)] | None
    return Annotated[float, Strict(), AllowInfNan(False), *bounds] | None


def _description(feature: Feature) -> str:
    if feature.is_categorical:
        codes = "; ".join(f"{code} = {label}" for code, label in sorted(feature.codes.items()))
        return f"{feature.description} Codes: {codes}. null = not recorded."
    return f"{feature.description} Range {feature.minimum}-{feature.maximum}; null = not recorded."


def build_road_user_model(spec: FeatureSpec) -> type[BaseModel]:
    """One road user: every feature of ``spec``, required, ``null`` meaning "not recorded"."""
    fields = {f.name: (_field_type(f), Field(..., description=_description(f))) for f in spec.features}
    return create_model(
        "RoadUser",
        __config__=ConfigDict(extra="forbid"),
        __doc__="One road user involved in an accident: the conditions the model scores.",
        **fields,
    )


def road_user_batch(road_user: type[BaseModel]) -> Any:
    """A batch: a list of 1 to ``MAX_BATCH_SIZE`` road users."""
    return Annotated[list[road_user], Field(min_length=1, max_length=MAX_BATCH_SIZE)]


class ModelRef(BaseModel):
    name: str
    version: str


class Reason(BaseModel):
    """One feature that pushed P(severe) up or down (``ml.explain``)."""

    feature: str = Field(description="The feature's name (a field of the road user).")
    label: str = Field(description="What the feature is, in words.")
    value: int | float | None = Field(description="The value sent (null: not recorded).")
    value_label: str = Field(description="The value in words, from the code book.")
    contribution: float = Field(
        description="Percentage points of P(severe) it adds (negative: removes): P(severe) minus "
        "P(severe) with this feature set to the reference road user's value."
    )
    text: str = Field(
        description='The reason in words: "Category of the user\'s vehicle: bicycle -4.1 points".'
    )


class Explanation(BaseModel):
    """Why this P(severe): each feature replaced in turn by the reference road user's value
    (its typical value in the champion's training data), the change in P(severe) in points."""

    reference_severe_probability: float = Field(
        description="P(severe) of the reference road user, the point contributions start from."
    )
    interactions: float = Field(
        description="Points of severe_probability - reference_severe_probability (x 100) that no "
        "single feature accounts for: what features do only together."
    )
    reasons: list[Reason] = Field(
        description="The features that moved P(severe) most, largest |contribution| first (top N)."
    )


class Prediction(BaseModel):
    severity: int = Field(description="Predicted class: 1 unhurt, 2 light injury, 3 hospitalised, 4 killed.")
    label: str
    probabilities: dict[str, float] = Field(description="Probability of each class, by label; they sum to 1.")
    severe_probability: float = Field(description="P(hospitalised or killed).")
    explanation: Explanation | None = Field(
        None, description="Only with `?explain=true`: the features that pushed P(severe) up or down."
    )


class PredictionResponse(Prediction):
    model: ModelRef


class BatchPredictionResponse(BaseModel):
    predictions: list[Prediction]
    model: ModelRef


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str
    trained_at: str | None
    data: dict[str, Any] = Field(description="What it trained on: years, rows per split, fingerprint.")
    test_metrics: dict[str, float]


class ReloadAccepted(BaseModel):
    status: str
    model: ModelInfo | None = Field(description="The champion served until the refresh ends.")


class RefreshInfo(BaseModel):
    running: bool
    started_at: str
    finished_at: str | None = None
    outcome: str | None = Field(
        None, description='"loaded version N", "unchanged (version N)", "no champion".'
    )
    error: str | None = Field(None, description="Why it failed (the model held is kept).")


class Health(BaseModel):
    status: str
    model_version: str | None = None


class FeatureDescription(BaseModel):
    name: str
    kind: str
    group: str
    description: str
    codes: dict[int, str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    whole: bool = Field(description="Whole numbers only (an integer in the contract).")
    typical: int | float | None = Field(
        None, description="Its typical value in the champion's training data."
    )


class FeaturesResponse(BaseModel):
    features: list[FeatureDescription]
    classes: dict[int, str]
    api_key_required: bool
    max_batch_size: int


class ErrorMessage(BaseModel):
    """Every error but a 422: what went wrong, in one sentence."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='Where: ["body", field] or ["body", row, field].')
    type: str = Field(description="pydantic's error type, e.g. missing, literal_error, less_than_equal.")
    msg: str = Field(description="The field, what is wrong and, for a code, every allowed code.")
    input: Any = Field(None, description="What was sent (a scalar), when it can be echoed.")
    allowed: dict[str, str] | None = Field(None, description="A code field's allowed codes and labels.")


class ValidationErrors(BaseModel):
    """A 422: the body is JSON but not road users the model can score."""

    detail: list[FieldError]
