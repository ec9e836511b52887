"""A national-size benchmark data set in the Kaggle layout, resampled from real BAAC rows.

``python -m tests.benchmarks.national_data --scale 1 --seed 42 --out data/national`` writes
``caracteristics.csv``, ``places.csv``, ``users.csv`` and ``vehicles.csv`` (latin-1, with the
header and the column formats of the Kaggle copy in ``data/sample``) and ``holidays.csv`` (the
sample's, byte-identical) for the accident years 2005-2016, ``scale`` times the size of the
Kaggle data (839,985 accidents, 1,433,389 vehicles, 1,876,005 road users). The same seed gives
byte-identical files.

**Metrics on it are not results.** Every row is built from real rows, but recombined: model
scores, severity rates, trends across years or départements measured on it say nothing about
France. It exists to time the pipeline and size the warehouse at the scale users run.

How it is made:

- **Accidents, places, vehicles**: the real full year 2013 (the data.gouv.fr files in the shared
  folder, ``SHARED_BAAC_DIR/datagouv_yearly/2013``: 58,397 accidents, 98,925 vehicles),
  resampled with replacement once per year (each year its own draw, from ``[seed, year]``).
  An accident keeps its place row and all its vehicles, so the joint distribution of
  conditions, road and vehicles is the real one. Accidents are renumbered
  ``Num_Acc = year * 10^8 + serial`` (serials 1..N in the order of the 2013 numbers), ``an`` is
  the 2-digit year, month, day and time are the 2013 row's (29 February becomes 28 February
  outside leap years). Values are rewritten in the Kaggle copy's formats, column by column as
  ``data/sample`` writes them: no leading zeros (``com`` ``052`` -> ``52``, ``dep`` ``060`` ->
  ``60``), and ``1.0`` where the sample writes floats (``nbv`` ``02`` -> ``2.0``, ``lat``
  ``5051199`` -> ``5051199.0``).
- **Yearly totals**: the accidents per year of the Kaggle ``caracteristics.csv`` 2005-2016
  (``ACCIDENTS_PER_YEAR``), times ``scale``. They are quoted, not recounted here (the full Kaggle
  file is not on this machine), but they add up to its documented 839,985 and 2013's equals the
  real 2013 file's 58,397.
- **Road users**: each generated vehicle gets the whole occupant list of a real vehicle of the
  same category (``catv``) in the shipped sample (4,998 road users of 2016 in 3,640 vehicles),
  chosen at random; when the sample has no vehicle of that category (tramways, ``catv`` 40),
  one of the same coarse group (``VEHICLE_GROUPS``), else any. Place, category, sex, trip,
  safety equipment, pedestrian fields and age are copied (``an_nais`` = year - the real age at
  the 2016 accident); pedestrians come along with the vehicle that hit them, as in the files.
- **Severity** ``grav`` (1 unhurt, 2 killed, 3 hospitalised, 4 light injury) is not copied: it is
  drawn from the class probabilities of a multinomial logistic regression fitted on the sample's
  road users joined to their vehicle and accident (one-hot of user category, vehicle group, age
  band, safety equipment and its use (``secu``'s digits), built-up area ``agg``, collision type
  ``col``, fixed obstacle ``obs``, lighting ``lum``), so severity depends on those features the
  way it does in real data. The sample is far more severe than France (47% hospitalised or
  killed), so a per-class shift of the logits is fitted on the generated road users until the
  expected shares equal ``SEVERITY_TARGETS``: 42% unhurt, 37% light injury, 18% hospitalised, 3%
  killed, the project's approximate national shares of road users in the BAAC files 2005-2016
  (not recounted here: the full users file is not on this machine). ONISR's published mainland
  totals are of that order (2016: 57,522 injury accidents, 3,477 killed, 27,187 hospitalised).

Logic is in pure functions over NumPy arrays (tested in ``tests/test_national_data.py``); the
files are written by DuckDB joins of index arrays onto the small real tables.
"""

from __future__ import annotations

import argparse
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from ml.baac import NUM_ACC_SERIAL
from orchestration import settings
from orchestration.ingestion.tables import CARACTERISTICS, HOLIDAYS, PLACES, USERS, VEHICLES, RawTable
from tests.conftest import SAMPLE_DIR, SHARED_BAAC_DIR

SOURCE_YEAR = 2013
SOURCE_DIR = SHARED_BAAC_DIR / "datagouv_yearly" / str(SOURCE_YEAR)
SAMPLE_YEAR = 2016
DEFAULT_OUT = settings.DATA_DIR / "national"

#: Accidents per year in the Kaggle caracteristics.csv (sum 839,985).
ACCIDENTS_PER_YEAR = {
    2005: 87_026,
    2006: 82_993,
    2007: 83_850,
    2008: 76_767,
    2009: 74_409,
    2010: 69_379,
    2011: 66_974,
    2012: 62_250,
    2013: 58_397,
    2014: 59_854,
    2015: 58_654,
    2016: 59_432,
}
YEARS = tuple(ACCIDENTS_PER_YEAR)

#: Target share of road users per ``grav`` code (1 unhurt, 2 killed, 3 hospitalised, 4 light).
SEVERITY_TARGETS = {1: 0.42, 2: 0.03, 3: 0.18, 4: 0.37}

#: Columns the Kaggle copy writes as floats (``1.0``, ``5051199.0``); ``data/sample`` shows them.
FLOAT_COLUMNS = {
    "caracteristics": {"lat", "long"},
    "places": {"v1", "circ", "nbv", "pr", "pr1", "vosp", "prof", "plan", "lartpc", "larrout", "surf"}
    | {"infra", "situ", "env1"},
    "users": {"place", "trajet", "secu", "locp", "actp", "etatp"},
    "vehicles": {"senc", "obs", "obsm", "choc", "manv"},
}
#: Columns kept as written (free text, letters); every other column is a whole number.
TEXT_COLUMNS = {
    "caracteristics": {"adr", "gps"},
    "places": {"v2"},
    "users": {"num_veh"},
    "vehicles": {"num_veh"},
}

#: Coarse vehicle groups (``catv`` codes of the 2005-2018 code book, retired codes included):
#: the fallback when the sample has no vehicle of a category, and a feature of the severity model.
VEHICLE_GROUPS = {
    "bicycle": (1,),
    "motorised two- or three-wheeler, quad": (2, 4, 5, 6, 30, 31, 32, 33, 34, 35, 36),
    "car": (3, 7, 8, 9),
    "van": (10, 11, 12),
    "heavy goods vehicle": (13, 14, 15, 16, 17),
    "bus, coach, train, tramway": (18, 19, 37, 38, 39, 40),
    "other": (20, 21, 99),
}
#: Age bands (lower bounds) of the severity model.
AGE_BANDS = (0, 14, 18, 25, 45, 65, 75)
SEVERITY_FEATURES = (
    "user_category",
    "vehicle_group",
    "age_band",
    "safety_equipment",
    "safety_equipment_use",
    "built_up_area",
    "collision_type",
    "fixed_obstacle",
    "lighting",
)

_TABLES = (CARACTERISTICS, PLACES, VEHICLES, USERS)
_MAX_CODE = 100  # codes are below 100 (catv 99); anything else has no category


# --- formats ---------------------------------------------------------------------------------


def column_style(table: str, column: str) -> str:
    """How the Kaggle copy writes ``table.column``: ``"float"``, ``"text"`` or ``"int"``."""
    if column in FLOAT_COLUMNS.get(table, ()):
        return "float"
    if column in TEXT_COLUMNS.get(table, ()):
        return "text"
    return "int"


def kaggle_format(values: pd.Series, style: str, name: str = "") -> pd.Series:
    """Raw data.gouv text -> the Kaggle copy's text, ``None`` for an empty field.

    ``int``: a whole number without leading zeros (``052`` -> ``52``); ``float``: Python's float
    text (``02`` -> ``2.0``, ``-041195`` -> ``-41195.0``, ``7.5`` stays); ``text``: unchanged.
    Raises ValueError naming the column for text in a numeric column or a fraction in an integer one.
    """
    text = values.fillna("").astype(str)
    if style == "text":
        return pd.Series(
            np.where(text == "", None, text.to_numpy(dtype=object)), index=values.index, dtype=object
        )
    # Each distinct value is rewritten once: numeric columns hold few of them.
    position, distinct = pd.factorize(text)
    written = np.array([_kaggle_value(value, style, name) for value in distinct], dtype=object)
    return pd.Series(written[position], index=values.index, dtype=object)


def _kaggle_value(value: str, style: str, name: str) -> str | None:
    if value.strip() == "":
        return None
    try:
        number = float(value.strip())
    except ValueError:
        raise ValueError(f"{name}: not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}: not a number: {value!r}")
    if style == "float":
        return repr(number)
    if not number.is_integer():
        raise ValueError(f"{name}: not a whole number: {value!r}")
    return str(int(number))


def codes(values: pd.Series) -> np.ndarray:
    """Numeric codes as int64 (``07``, ``7``, ``7.0`` -> 7), -1 for an empty field."""
    text = values.fillna("").astype(str).str.strip()
    numbers = pd.to_numeric(text.where(text != ""), errors="raise")
    return numbers.fillna(-1).astype(np.int64).to_numpy()


def read_csv_text(path: Path, encoding: str) -> pd.DataFrame:
    """Every field as text, empty fields as ``""`` (never NaN)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)


# --- the real inputs --------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceYear:
    """The real 2013 accidents, places and vehicles, in the Kaggle formats.

    ``accidents`` and ``places`` share their row order; ``vehicles`` are grouped by accident, the
    vehicles of accident ``i`` at rows ``vehicle_start[i]`` .. ``+ vehicle_count[i] - 1``.
    """

    accidents: pd.DataFrame
    places: pd.DataFrame
    vehicles: pd.DataFrame
    vehicle_start: np.ndarray
    vehicle_count: np.ndarray


def to_kaggle_table(raw: pd.DataFrame, table: RawTable) -> pd.DataFrame:
    """A data.gouv table rewritten column by column in the Kaggle copy's formats."""
    return pd.DataFrame(
        {c: kaggle_format(raw[c], column_style(table.name, c), f"{table.name}.{c}") for c in table.columns}
    )


def read_source_year(source_dir: Path) -> SourceYear:
    """Read the data.gouv 2013 files (latin-1) and rewrite them in the Kaggle formats."""
    raw = {
        table.name: read_csv_text(source_dir / f"{table.datagouv_stem}_{SOURCE_YEAR}.csv", "latin-1")
        for table in (CARACTERISTICS, PLACES, VEHICLES)
    }
    accident_ids = raw["caracteristics"]["Num_Acc"].astype(np.int64).to_numpy()
    places = raw["places"].set_index(raw["places"]["Num_Acc"].astype(np.int64)).loc[accident_ids]
    vehicles = raw["vehicles"]
    # Vehicles grouped by their accident's row, in file order within an accident.
    accident_row = pd.Series(np.arange(len(accident_ids)), index=accident_ids)
    vehicle_accident = accident_row.loc[vehicles["Num_Acc"].astype(np.int64)].to_numpy()
    order = np.argsort(vehicle_accident, kind="stable")
    vehicles = vehicles.iloc[order].reset_index(drop=True)
    count = np.bincount(vehicle_accident, minlength=len(accident_ids))
    return SourceYear(
        accidents=to_kaggle_table(raw["caracteristics"], CARACTERISTICS),
        places=to_kaggle_table(places.reset_index(drop=True), PLACES),
        vehicles=to_kaggle_table(vehicles, VEHICLES),
        vehicle_start=np.cumsum(count) - count,
        vehicle_count=count,
    )


@dataclass(frozen=True)
class Sample:
    """The shipped sample's road users (Kaggle text), grouped by vehicle, and what the
    severity model learns from: each user's features and ``grav``."""

    users: pd.DataFrame
    vehicle_catv: np.ndarray
    user_start: np.ndarray  # the users of sample vehicle j: user_start[j] .. + user_count[j] - 1
    user_count: np.ndarray
    features: np.ndarray
    grav: np.ndarray


def read_sample(sample_dir: Path) -> Sample:
    """Read the sample (UTF-8, Kaggle layout); users ordered by vehicle, file order within."""
    accidents = read_csv_text(sample_dir / CARACTERISTICS.kaggle_file, "utf-8")
    vehicles = read_csv_text(sample_dir / VEHICLES.kaggle_file, "utf-8")
    users = read_csv_text(sample_dir / USERS.kaggle_file, "utf-8")
    key = ["Num_Acc", "num_veh"]
    vehicle_row = pd.Series(np.arange(len(vehicles)), index=pd.MultiIndex.from_frame(vehicles[key]))
    user_vehicle = vehicle_row.loc[pd.MultiIndex.from_frame(users[key])].to_numpy()
    order = np.argsort(user_vehicle, kind="stable")
    users = users.iloc[order].reset_index(drop=True)
    user_vehicle = user_vehicle[order]
    count = np.bincount(user_vehicle, minlength=len(vehicles))

    accident_row = pd.Series(np.arange(len(accidents)), index=accidents["Num_Acc"])
    user_accident = accident_row.loc[users["Num_Acc"]].to_numpy()
    catv = codes(vehicles["catv"])
    features = severity_features(
        user_category=codes(users["catu"]),
        catv=catv[user_vehicle],
        age=user_ages(codes(users["an_nais"])),
        secu=codes(users["secu"]),
        built_up_area=codes(accidents["agg"])[user_accident],
        collision_type=codes(accidents["col"])[user_accident],
        fixed_obstacle=codes(vehicles["obs"])[user_vehicle],
        lighting=codes(accidents["lum"])[user_accident],
    )
    return Sample(
        users=users,
        vehicle_catv=catv,
        user_start=np.cumsum(count) - count,
        user_count=count,
        features=features,
        grav=codes(users["grav"]),
    )


def user_ages(birth_year: np.ndarray) -> np.ndarray:
    """Age at the sample's 2016 accident, -1 when the birth year is missing."""
    return np.where(birth_year > 0, SAMPLE_YEAR - birth_year, -1)


# --- pure logic -------------------------------------------------------------------------------


def accidents_per_year(scale: float) -> dict[int, int]:
    """Accidents to generate per year: the real yearly totals times ``scale``, at least one."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return {year: max(1, round(total * scale)) for year, total in ACCIDENTS_PER_YEAR.items()}


def resample_accidents(
    n_source: int, per_year: dict[int, int], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw each year's accidents from the ``n_source`` real ones, with replacement.

    Returns, per generated accident, its year, its serial (1..N within the year) and its
    source row. A year's draw depends only on ``seed`` and the year; the draws are sorted so
    serials follow the order of the 2013 accident numbers.
    """
    years, serials, sources = [], [], []
    for year, n in per_year.items():
        rng = np.random.default_rng([seed, year])
        sources.append(np.sort(rng.integers(0, n_source, n)))
        years.append(np.full(n, year, dtype=np.int64))
        serials.append(np.arange(1, n + 1, dtype=np.int64))
    return np.concatenate(years), np.concatenate(serials), np.concatenate(sources)


def expand(start: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Children of each parent: parent ``i`` owns rows ``start[i]`` .. ``start[i] + count[i] - 1``.

    Returns, per child in parent order, its parent's index and its row.
    """
    parent = np.repeat(np.arange(len(count)), count)
    first_child = np.cumsum(count) - count
    offset = np.arange(len(parent)) - np.repeat(first_child, count)
    return parent, np.repeat(start, count) + offset


def valid_day(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The day, except 29 February outside leap years, which becomes the 28th."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return np.where((month == 2) & (day == 29) & ~leap, 28, day)


def vehicle_group(catv: np.ndarray) -> np.ndarray:
    """Index of the coarse group in ``VEHICLE_GROUPS``, -1 for a code in none."""
    lookup = np.full(_MAX_CODE, -1)
    for index, members in enumerate(VEHICLE_GROUPS.values()):
        lookup[list(members)] = index
    inside = (catv >= 0) & (catv < _MAX_CODE)
    return np.where(inside, lookup[np.clip(catv, 0, _MAX_CODE - 1)], -1)


def pick_same_category(catv: np.ndarray, sample_catv: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each vehicle, a random sample vehicle (its index) of the same ``catv``; of the same
    group when the sample has none of that category; else any sample vehicle."""
    n = len(sample_catv)
    by_code = np.argsort(sample_catv, kind="stable")
    group = vehicle_group(sample_catv)
    by_group = np.argsort(group, kind="stable")
    # Candidates live in one array: the sample sorted by catv, then sorted by group.
    candidates = np.concatenate([by_code, by_group])
    start = np.zeros(_MAX_CODE + 1, dtype=np.int64)  # the last entry: any vehicle
    count = np.full(_MAX_CODE + 1, n, dtype=np.int64)
    group_codes = sorted(set(group[group >= 0].tolist()))
    for code in range(_MAX_CODE):
        in_code = sample_catv[by_code] == code
        code_group = vehicle_group(np.array([code]))[0]
        if in_code.any():
            start[code], count[code] = np.argmax(in_code), in_code.sum()
        elif code_group in group_codes:
            in_group = group[by_group] == code_group
            start[code], count[code] = n + np.argmax(in_group), in_group.sum()
    slot = np.where((catv >= 0) & (catv < _MAX_CODE), catv, _MAX_CODE)
    chosen = start[slot] + np.floor(rng.random(len(catv)) * count[slot]).astype(np.int64)
    return candidates[chosen]


def severity_features(
    *,
    user_category: np.ndarray,
    catv: np.ndarray,
    age: np.ndarray,
    secu: np.ndarray,
    built_up_area: np.ndarray,
    collision_type: np.ndarray,
    fixed_obstacle: np.ndarray,
    lighting: np.ndarray,
) -> np.ndarray:
    """The severity model's categorical features (``SEVERITY_FEATURES``), -1 for unknown.

    ``secu`` is two digits, equipment then use (11 = seat belt, used); the one-digit codes
    give the equipment only.
    """
    age_band = np.where(age >= 0, np.searchsorted(AGE_BANDS, age, side="right") - 1, -1)
    equipment = np.where(secu >= 10, secu // 10, secu)
    equipment_use = np.where(secu >= 10, secu % 10, -1)
    return np.column_stack(
        [
            user_category,
            vehicle_group(catv),
            age_band,
            equipment,
            equipment_use,
            built_up_area,
            collision_type,
            fixed_obstacle,
            lighting,
        ]
    ).astype(np.int64)


def fit_severity_model(features: np.ndarray, grav: np.ndarray) -> Pipeline:
    """One-hot encoding and a multinomial logistic regression of ``grav``."""
    model = make_pipeline(
        OneHotEncoder(handle_unknown="ignore"),
        LogisticRegression(C=1.0, max_iter=2000),
    )
    return model.fit(features, grav)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_prior_shift(
    logits: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray | None = None,
    tolerance: float = 1e-7,
    max_iterations: int = 1000,
) -> np.ndarray:
    """A per-class shift of the logits after which the mean class probabilities (weighted by
    ``weights``, the rows each logit row stands for) equal ``targets``.

    The fixed-point iteration of a prior correction (shift += log target - log share); the
    shift of the first class is 0.
    """
    weights = np.ones(len(logits)) if weights is None else weights
    shift = np.zeros(logits.shape[1])
    for _ in range(max_iterations):
        shares = weights @ softmax(logits + shift) / weights.sum()
        if np.max(np.abs(shares - targets)) < tolerance:
            return shift - shift[0]
        shift += np.log(targets) - np.log(shares)
    raise RuntimeError(f"the prior shift did not converge: shares {shares}, targets {targets}")


def distinct_rows(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each distinct row of ``features``, and each row's distinct-row index.

    Road users share few feature combinations: the model scores each combination once.
    """
    key = np.zeros(len(features), dtype=np.int64)
    combinations = 1
    for column in features.T:
        position, values = pd.factorize(column)
        combinations *= len(values)
        if combinations >= 2**62:
            raise OverflowError("too many feature combinations for one int64 key")
        key = key * len(values) + position
    inverse, _ = pd.factorize(key)
    first = np.zeros(inverse.max() + 1, dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(inverse))[::-1]  # the last write is the first row
    return first, inverse


def draw_classes(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class index per row, drawn from the row's probabilities."""
    cumulative = np.cumsum(probabilities, axis=1)
    drawn = (rng.random(len(probabilities))[:, None] >= cumulative).sum(axis=1)
    return np.minimum(drawn, probabilities.shape[1] - 1)


@dataclass(frozen=True)
class Plan:
    """Every generated row as indices into the real tables.

    Accidents: year, ``Num_Acc``, day, and the 2013 row. Vehicles: their accident and 2013 row.
    Users: their vehicle, their sample row and ``grav``.
    """

    accident_year: np.ndarray
    accident_num: np.ndarray
    accident_day: np.ndarray
    accident_source: np.ndarray
    vehicle_accident: np.ndarray
    vehicle_source: np.ndarray
    user_vehicle: np.ndarray
    user_source: np.ndarray
    user_grav: np.ndarray
    severity_shift: np.ndarray


def plan_national_data(source: SourceYear, sample: Sample, scale: float, seed: int) -> Plan:
    """Which real rows make up each generated row, and each road user's drawn severity."""
    year, serial, accident_source = resample_accidents(len(source.accidents), accidents_per_year(scale), seed)
    month = codes(source.accidents["mois"])[accident_source]
    day = valid_day(year, month, codes(source.accidents["jour"])[accident_source])

    vehicle_accident, vehicle_source = expand(
        source.vehicle_start[accident_source], source.vehicle_count[accident_source]
    )
    vehicle_catv = codes(source.vehicles["catv"])[vehicle_source]
    picked = pick_same_category(vehicle_catv, sample.vehicle_catv, np.random.default_rng([seed, 1]))
    user_vehicle, user_source = expand(sample.user_start[picked], sample.user_count[picked])

    user_accident_source = accident_source[vehicle_accident[user_vehicle]]
    user_vehicle_source = vehicle_source[user_vehicle]
    features = severity_features(
        user_category=sample.features[user_source, SEVERITY_FEATURES.index("user_category")],
        catv=vehicle_catv[user_vehicle],
        age=user_ages(codes(sample.users["an_nais"]))[user_source],
        secu=codes(sample.users["secu"])[user_source],
        built_up_area=codes(source.accidents["agg"])[user_accident_source],
        collision_type=codes(source.accidents["col"])[user_accident_source],
        fixed_obstacle=codes(source.vehicles["obs"])[user_vehicle_source],
        lighting=codes(source.accidents["lum"])[user_accident_source],
    )
    model = fit_severity_model(sample.features, sample.grav)
    classes = model.classes_
    first, combination = distinct_rows(features)
    logits = model.decision_function(features[first])
    targets = np.array([SEVERITY_TARGETS[int(c)] for c in classes])
    shift = fit_prior_shift(logits, targets, weights=np.bincount(combination).astype(float))
    probabilities = softmax(logits + shift)[combination]
    drawn = draw_classes(probabilities, np.random.default_rng([seed, 2]))
    return Plan(
        accident_year=year,
        accident_num=year * NUM_ACC_SERIAL + serial,
        accident_day=day,
        accident_source=accident_source,
        vehicle_accident=vehicle_accident,
        vehicle_source=vehicle_source,
        user_vehicle=user_vehicle,
        user_source=user_source,
        user_grav=classes[drawn],
        severity_shift=shift,
    )


# --- writing ----------------------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _select(table: RawTable, generated: dict[str, str]) -> str:
    """The table's columns in file order: generated ones from ``g``, the rest from ``s``."""
    return ", ".join(f"{generated.get(c, 's.' + _quote(c))} as {_quote(c)}" for c in table.columns)


def transcode_to_latin1(source: Path, target: Path) -> None:
    """DuckDB writes UTF-8; the Kaggle files are latin-1."""
    with (
        source.open(encoding="utf-8", newline="") as reader,
        target.open("w", encoding="latin-1", newline="") as writer,
    ):
        shutil.copyfileobj(reader, writer, 1 << 22)


def write_tables(
    plan: Plan, source: SourceYear, sample: Sample, out_dir: Path, log: Callable[[str], None] = print
) -> dict[str, int]:
    """Write the four BAAC tables of ``plan`` and the holidays file; rows per table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("set preserve_insertion_order = true")
    for name, frame in {
        "src_caracteristics": source.accidents,
        "src_places": source.places,
        "src_vehicles": source.vehicles,
        "src_users": sample.users,
    }.items():
        # An empty field is NULL: DuckDB would write an empty string as "".
        text = frame.astype(object).where(frame.notna() & frame.ne(""), None)
        text["src"] = np.arange(len(frame))
        con.register("_frame", text)
        con.execute(f"create table {name} as select * from _frame")
        con.unregister("_frame")

    accident = pd.DataFrame(
        {
            "row": np.arange(len(plan.accident_num)),
            "num_acc": plan.accident_num,
            "an": plan.accident_year % 100,
            "jour": plan.accident_day,
            "src": plan.accident_source,
        }
    )
    vehicle = pd.DataFrame(
        {
            "row": np.arange(len(plan.vehicle_source)),
            "num_acc": plan.accident_num[plan.vehicle_accident],
            "src": plan.vehicle_source,
        }
    )
    user = pd.DataFrame(
        {
            "row": np.arange(len(plan.user_source)),
            "num_acc": vehicle["num_acc"].to_numpy()[plan.user_vehicle],
            "year": plan.accident_year[plan.vehicle_accident[plan.user_vehicle]],
            "vehicle_src": plan.vehicle_source[plan.user_vehicle],
            "grav": plan.user_grav,
            "src": plan.user_source,
        }
    )
    queries = [
        (
            CARACTERISTICS,
            accident,
            "src_caracteristics",
            {"Num_Acc": "g.num_acc", "an": "g.an", "jour": "g.jour"},
        ),
        (PLACES, accident, "src_places", {"Num_Acc": "g.num_acc"}),
        (VEHICLES, vehicle, "src_vehicles", {"Num_Acc": "g.num_acc"}),
        (
            USERS,
            user,
            "src_users",
            {
                "Num_Acc": "g.num_acc",
                "grav": "g.grav",
                # The same age as the real user at their 2016 accident.
                "an_nais": f"cast(s.an_nais as bigint) + g.year - {SAMPLE_YEAR}",
                "num_veh": "v.num_veh",
            },
        ),
    ]
    rows = {}
    for table, index, source_table, generated in queries:
        started = time.perf_counter()
        con.register("g", index)
        vehicles_join = "join src_vehicles v on v.src = g.vehicle_src" if table is USERS else ""
        staging = out_dir / f".{table.kaggle_file}.utf8"
        target = "'" + str(staging).replace("'", "''") + "'"
        con.execute(
            f"copy (select {_select(table, generated)} from g join {source_table} s on s.src = g.src "
            f"{vehicles_join} order by g.row) to {target} (header, delimiter ',')"
        )
        con.unregister("g")
        transcode_to_latin1(staging, out_dir / table.kaggle_file)
        staging.unlink()
        rows[table.name] = len(index)
        log(f"{table.kaggle_file:<20} {len(index):>10,} rows {time.perf_counter() - started:6.1f} s")
    shutil.copyfile(SAMPLE_DIR / HOLIDAYS.kaggle_file, out_dir / HOLIDAYS.kaggle_file)
    con.close()
    return rows


def generate_national_data(
    out_dir: Path,
    scale: float = 1.0,
    seed: int = 42,
    source_dir: Path = SOURCE_DIR,
    sample_dir: Path = SAMPLE_DIR,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Read the real rows, plan, write; returns the rows written per table."""
    started = time.perf_counter()
    source = read_source_year(source_dir)
    sample = read_sample(sample_dir)
    log(
        f"read {len(source.accidents):,} accidents and {len(source.vehicles):,} vehicles of {SOURCE_YEAR}, "
        f"{len(sample.users):,} road users of the sample in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    plan = plan_national_data(source, sample, scale, seed)
    log(
        f"planned {len(plan.accident_num):,} accidents, {len(plan.vehicle_source):,} vehicles, "
        f"{len(plan.user_source):,} road users and drew their severity "
        f"in {time.perf_counter() - started:.1f} s"
    )
    rows = write_tables(plan, source, sample, out_dir, log)
    shares = {int(c): float(np.mean(plan.user_grav == c)) for c in sorted(SEVERITY_TARGETS)}
    log(
        "grav shares: "
        + ", ".join(
            f"{c}: {100 * s:.1f}% (target {100 * SEVERITY_TARGETS[c]:.0f}%)" for c, s in shares.items()
        )
        + f"; logit shift from the sample's model: {np.round(plan.severity_shift, 2).tolist()}"
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of national size (default 1)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--source", type=Path, default=SOURCE_DIR, help="folder of the data.gouv 2013 files")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    generate_national_data(args.out, args.scale, args.seed, source_dir=args.source)
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
