"""The fast reader of valid bodies (api/batch_reader.py) accepts nothing the request models
refuse, and reads what it accepts exactly as they do; valid bodies take it."""

from __future__ import annotations

import json
from typing import Annotated

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter, ValidationError

from api.batch_reader import RoadUserReader
from api.schemas import MAX_BATCH_SIZE, build_road_user_model
from api.scoring import encode_road_users
from ml.defaults import DBT_PROJECT_DIR
from ml.features import load_feature_spec
from tests.benchmarks.api_load import road_users

SPEC = load_feature_spec(DBT_PROJECT_DIR)
ROAD_USER = build_road_user_model(SPEC)
# What the /predict route validates a body with when the reader declines it.
REQUEST = TypeAdapter(ROAD_USER | Annotated[list[ROAD_USER], Field(min_length=1, max_length=MAX_BATCH_SIZE)])
READER = RoadUserReader(SPEC)


def by_the_request_models(body: bytes) -> tuple[np.ndarray, bool] | None:
    try:
        parsed = REQUEST.validate_python(json.loads(body))
    except (ValueError, ValidationError):
        return None
    is_batch = isinstance(parsed, list)
    return encode_road_users(parsed if is_batch else [parsed], SPEC), is_batch


def good_value(feature) -> st.SearchStrategy:
    if feature.is_categorical:
        codes = sorted(feature.codes)
        zero = st.sampled_from([-0.0, 0.0]) if 0 in codes else st.nothing()
        return st.sampled_from(codes) | st.sampled_from(codes).map(float) | zero
    zero = st.just(-0.0) if feature.minimum <= 0 <= feature.maximum else st.nothing()
    if feature.data_type == "integer":
        whole = st.integers(int(feature.minimum), int(feature.maximum))
        return whole | whole.map(float) | zero
    return st.floats(feature.minimum, feature.maximum) | zero


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to the bit: -0.0 is not 0.0 here (the prediction log would write them apart)."""
    return a.shape == b.shape and a.tobytes() == b.tobytes()


BAD_VALUES = st.sampled_from(
    [0, -1, 99, 2.5, 1e9, -1e300, 10**30, True, False, "3", "", [], {}, 1e308, 0.1, 7.000001]
)


@st.composite
def road_user(draw, bad: bool) -> dict:
    user = {}
    for feature in SPEC.features:
        kinds = [good_value(feature), st.none()] + ([BAD_VALUES] if bad else [])
        user[feature.name] = draw(st.one_of(kinds))
    if bad and draw(st.booleans()):
        names = list(user)
        if draw(st.booleans()):
            del user[draw(st.sampled_from(names))]
        else:
            user["unknown_field"] = 1
    order = draw(st.permutations(list(user)))
    return {name: user[name] for name in order}


def bodies(bad: bool) -> st.SearchStrategy:
    one = road_user(bad)
    return st.one_of(one, st.lists(one, min_size=0 if bad else 1, max_size=4))


@settings(max_examples=300, deadline=None, database=None)
@given(body=bodies(bad=True))
def test_the_reader_accepts_only_what_the_request_models_accept_and_reads_it_as_they_do(body):
    raw = json.dumps(body).encode()
    fast, full = READER.read(raw), by_the_request_models(raw)
    if fast is not None:
        assert full is not None, body
        assert fast[1] == full[1]
        assert same_bits(fast[0], full[0])


@settings(max_examples=100, deadline=None, database=None)
@given(body=bodies(bad=False))
def test_valid_bodies_are_read_by_the_reader(body):
    raw = json.dumps(body).encode()
    fast, full = READER.read(raw), by_the_request_models(raw)
    assert fast is not None and full is not None
    assert fast[1] == full[1]
    assert same_bits(fast[0], full[0])


def test_a_full_batch_is_read_and_bodies_that_are_no_batch_are_left_to_the_models():
    users = road_users(SPEC, MAX_BATCH_SIZE, seed=1)
    X, is_batch = READER.read(json.dumps(users).encode())
    assert is_batch and X.shape == (MAX_BATCH_SIZE, len(SPEC.names))
    assert same_bits(X, by_the_request_models(json.dumps(users).encode())[0])
    too_many = json.dumps(users + users[:1]).encode()
    for body in (too_many, b"[]", b"{}", b"null", b"[1]", b"NaN", b"not json", b"", b'{"a": Infinity}'):
        assert READER.read(body) is None, body
    nothing_recorded, is_batch = READER.read(json.dumps({n: None for n in SPEC.names}).encode())
    assert not is_batch and np.isnan(nothing_recorded).all()


def test_one_bad_value_in_a_valid_batch_is_left_to_the_models():
    """Each bad value alone, in each field, in the last row of a valid batch."""
    users = road_users(SPEC, 3, seed=4)
    for feature in SPEC.features:
        bad = [-1, 0.5, 1e9, float(max(feature.codes) + 1)] if feature.is_categorical else []
        if feature.is_categorical:
            bad += [c for c in range(-1, max(feature.codes) + 2) if c not in feature.codes]
        else:
            bad += [feature.minimum - 1, feature.maximum + 1]
            bad += [feature.minimum + 0.5] if feature.data_type == "integer" else []
        for value in bad:
            body = json.dumps([*users[:2], {**users[2], feature.name: value}]).encode()
            assert READER.read(body) is None, (feature.name, value)
            assert by_the_request_models(body) is None, (feature.name, value)


def test_values_json_or_python_would_bend_are_left_to_the_models():
    """true for the code 1, "3" for 3, 2.5 for a whole number: each a 422 of the models."""
    valid = road_users(SPEC, 1, seed=2)[0]
    code = next(f for f in SPEC.features if f.is_categorical and 1 in f.codes)
    whole = next(f for f in SPEC.features if not f.is_categorical and f.data_type == "integer")
    for name, value in ((code.name, True), (code.name, "1"), (whole.name, whole.minimum + 0.5)):
        body = json.dumps({**valid, name: value}).encode()
        assert READER.read(body) is None and by_the_request_models(body) is None, (name, value)
    assert READER.read(json.dumps({**valid, code.name: 1.0}).encode()) is not None


def test_json_the_serialiser_would_not_write_is_read_as_the_models_read_it():
    """Bodies written by hand: duplicate keys (the last wins), exponents, long decimals,
    whitespace, escapes; and a byte-order mark, literals or trailing text, refused by both."""
    valid = road_users(SPEC, 1, seed=5)[0]
    text = json.dumps(valid)
    whole = next(f for f in SPEC.features if not f.is_categorical and f.data_type == "integer")
    low = int(whole.minimum)
    first = SPEC.names[0]
    escaped = f"\\u{ord(first[0]):04x}{first[1:]}"  # the same key, its first letter escaped
    value = f'"{whole.name}": {json.dumps(valid[whole.name])}'
    accepted = [
        text[:-1] + f', "{whole.name}": {low}' + "}",
        text.replace(value, f'"{whole.name}": {low}e0'),
        text.replace(value, f'"{whole.name}": {low}.000000000000000000001'),
        "\n\t " + text + " \r\n",
        text.replace(f'"{first}"', f'"{escaped}"'),
    ]
    for body in accepted:
        fast, full = READER.read(body.encode()), by_the_request_models(body.encode())
        assert full is not None and fast is not None, body
        assert same_bits(fast[0], full[0]), body
    for body in ("\ufeff" + text, text + " x", text.replace("null", "NaN", 1), "[" + text + ",]"):
        assert READER.read(body.encode()) is None, body
