"""Every field of the feature specification, against every kind of bad value.

For each feature: ``null`` is accepted ("not recorded"); a code outside the code book, a
number outside the declared range and a value of the wrong type are each a 422 naming the
field (``loc == ["body", field]``), listing a code field's allowed codes with their labels,
and never reaching the model. The allowed codes are read here from the code-book seeds
directly, not through ``ml.features``, so the API is checked against the source of truth.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from api.main import create_app
from api.routes import predict as predict_route
from api.settings import ApiSettings
from ml.defaults import DBT_PROJECT_DIR
from ml.features import Feature, load_feature_spec

SPEC = load_feature_spec(DBT_PROJECT_DIR)
CODE_FIELDS = [f for f in SPEC.features if f.is_categorical]
NUMERIC_FIELDS = [f for f in SPEC.features if not f.is_categorical]
SEEDS = DBT_PROJECT_DIR / "seeds"

#: Few examples per field and kind: each is a request, and there are about 90 such tests.
examples = hypothesis_settings(max_examples=10, deadline=None, database=None)


def read_seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def seed_codes(codebook_entry: str) -> dict[int, str]:
    """The codes of one code-book entry ("table.column") with their English labels, less the
    ones baac_columns.csv marks as not recorded ("empty" is the empty code)."""
    table, column = codebook_entry.split(".")
    not_recorded = {
        "" if value == "empty" else value
        for row in read_seed("baac_columns.csv")
        if (row["table"], row["column"]) == (table, column)
        for value in row["not_recorded_values"].split(";")
    }
    return {
        int(row["code"]): row["label_en"]
        for name in ("baac_codes.csv", "derived_codes.csv")
        for row in read_seed(name)
        if (row["table"], row["column"]) == (table, column) and row["code"] not in not_recorded
    }


ALLOWED = {
    f.name: {str(code): label for code, label in seed_codes(f.codebook_entry).items()} for f in CODE_FIELDS
}


@dataclass
class Probe:
    client: TestClient
    road_user: dict  # a valid road user
    scored: list  # one entry per call of the scoring function


@pytest.fixture(scope="module")
def probe(champion, typical, tmp_path_factory) -> Iterator[Probe]:
    """One service for every example (hypothesis reuses it), counting what reaches scoring."""
    scored: list = []
    real = predict_route.predict_severity
    settings = ApiSettings(
        tracking_uri=champion.tracking_uri,
        refresh_seconds=0,
        prediction_log_dir=tmp_path_factory.mktemp("predictions"),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predict_route, "predict_severity", lambda *args: scored.append(args) or real(*args))
        with TestClient(create_app(settings)) as client:
            yield Probe(client, typical, scored)


def assert_refused(probe: Probe, feature: Feature, value) -> None:
    scored_before = len(probe.scored)
    response = probe.client.post("/predict", json={**probe.road_user, feature.name: value})
    assert response.status_code == 422, (feature.name, value, response.text)
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", feature.name]
    assert error["msg"].startswith(f"{feature.name}: ")
    if feature.is_categorical:
        assert error["allowed"] == ALLOWED[feature.name]
    else:
        assert "allowed" not in error
    assert len(probe.scored) == scored_before, "a refused road user reached the model"


@pytest.mark.parametrize("feature", SPEC.features, ids=SPEC.names)
def test_null_is_accepted_as_not_recorded(probe, feature):
    scored_before = len(probe.scored)
    response = probe.client.post("/predict", json={**probe.road_user, feature.name: None})
    assert response.status_code == 200, response.text
    assert response.json()["severity"] in SPEC.classes
    assert len(probe.scored) == scored_before + 1
    _, inputs, _ = probe.scored[-1]
    assert math.isnan(inputs[0, SPEC.names.index(feature.name)])  # what the model reads as missing


@pytest.mark.parametrize("feature", CODE_FIELDS, ids=[f.name for f in CODE_FIELDS])
@examples
@given(data=st.data())
def test_a_code_outside_the_code_book_is_refused(probe, feature, data):
    code = data.draw(st.integers().filter(lambda code: str(code) not in ALLOWED[feature.name]))
    assert_refused(probe, feature, code)


def out_of_range(feature: Feature, below: bool):
    """Finite numbers of the feature's type strictly outside its declared range."""
    if feature.data_type == "integer":
        if below:
            return st.integers(max_value=math.ceil(feature.minimum) - 1)
        return st.integers(min_value=math.floor(feature.maximum) + 1)
    bounds = {"max_value": feature.minimum} if below else {"min_value": feature.maximum}
    return st.floats(
        **bounds, exclude_min=not below, exclude_max=below, allow_nan=False, allow_infinity=False
    )


@pytest.mark.parametrize("below", [True, False], ids=["below_minimum", "above_maximum"])
@pytest.mark.parametrize("feature", NUMERIC_FIELDS, ids=[f.name for f in NUMERIC_FIELDS])
@examples
@given(data=st.data())
def test_a_number_out_of_range_is_refused(probe, feature, below, data):
    assert_refused(probe, feature, data.draw(out_of_range(feature, below)))


def wrong_type(feature: Feature):
    """Strings (even "3"), booleans, lists and, for a whole-number field, any number with a
    fractional part (3.0 is the integer 3, as JSON Schema's ``integer`` says)."""
    kinds = [st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2)]
    if feature.data_type == "integer":
        kinds.append(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()))
    return st.one_of(kinds)


@pytest.mark.parametrize("feature", SPEC.features, ids=SPEC.names)
@examples
@given(data=st.data())
def test_a_value_of_the_wrong_type_is_refused(probe, feature, data):
    assert_refused(probe, feature, data.draw(wrong_type(feature)))


def test_the_openapi_enum_of_each_code_field_is_its_code_book_seed(probe):
    schema = probe.client.get("/openapi.json").json()["components"]["schemas"]["RoadUser"]
    for feature in CODE_FIELDS:
        (code,) = [s for s in schema["properties"][feature.name]["anyOf"] if s.get("type") == "integer"]
        assert code["enum"] == sorted(seed_codes(feature.codebook_entry)), feature.name
    assert set(schema["required"]) == set(SPEC.names)
