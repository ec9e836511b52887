"""The national-size benchmark data (tests/benchmarks/national_data.py): pure logic, and the
files it writes at a small scale, read back as the pipeline reads them."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.ingestion.load import load_raw_table
from orchestration.ingestion.tables import CARACTERISTICS, HOLIDAYS, PLACES, RAW_TABLES, USERS, VEHICLES
from tests.benchmarks import national_data as nd
from tests.conftest import SAMPLE_DIR

SCALE = 0.002
BAAC_TABLES = (CARACTERISTICS, PLACES, USERS, VEHICLES)
STYLE_PATTERNS = {"int": r"-?\d+", "float": r"-?\d+\.\d+", "text": r".*"}

_generated: dict[tuple[float, int], Path] = {}


def generate(shared_baac_dir: Path, tmp_path_factory, scale: float = SCALE, seed: int = 42) -> Path:
    """The files for (scale, seed), generated once per test session."""
    if (scale, seed) not in _generated:
        out = tmp_path_factory.mktemp(f"national-{seed}")
        source = shared_baac_dir / "datagouv_yearly" / str(nd.SOURCE_YEAR)
        nd.generate_national_data(out, scale, seed, source_dir=source, log=lambda _: None)
        _generated[scale, seed] = out
    return _generated[scale, seed]


@pytest.fixture
def national(shared_baac_dir, tmp_path_factory) -> Path:
    return generate(shared_baac_dir, tmp_path_factory)


def read(folder: Path, table) -> pd.DataFrame:
    return pd.read_csv(folder / table.kaggle_file, dtype=str, keep_default_na=False, encoding="latin-1")


# --- pure logic -------------------------------------------------------------------------------


def test_column_styles_are_those_of_the_sample():
    for table in BAAC_TABLES:
        sample = pd.read_csv(SAMPLE_DIR / table.kaggle_file, dtype=str, keep_default_na=False)
        for column in table.columns:
            pattern = STYLE_PATTERNS[nd.column_style(table.name, column)]
            values = sample[column][sample[column] != ""]
            assert values.str.fullmatch(pattern).all(), f"{table.name}.{column}"


def test_kaggle_format_drops_leading_zeros_and_writes_floats_as_the_kaggle_copy():
    raw = pd.Series(["052", "", "7", " 590"])
    assert nd.kaggle_format(raw, "int").tolist() == ["52", None, "7", "590"]
    raw = pd.Series(["02", "-041195", "7.5", "", "0000000"])
    assert nd.kaggle_format(raw, "float").tolist() == ["2.0", "-41195.0", "7.5", None, "0.0"]
    assert nd.kaggle_format(pd.Series(["Rue du 08 Mai", ""]), "text").tolist() == ["Rue du 08 Mai", None]
    with pytest.raises(ValueError, match="places.nbv: not a number"):
        nd.kaggle_format(pd.Series(["02", "x"]), "float", "places.nbv")
    with pytest.raises(ValueError, match="lieux.pr: not a whole number"):
        nd.kaggle_format(pd.Series(["7.5"]), "int", "lieux.pr")


def test_yearly_totals_are_the_kaggle_files_and_scale_them():
    assert sum(nd.accidents_per_year(1).values()) == 839_985
    assert nd.accidents_per_year(1)[2013] == 58_397  # the real 2013 file
    assert list(nd.accidents_per_year(0.5)) == list(range(2005, 2017))
    assert nd.accidents_per_year(0.5)[2005] == 43_513
    assert min(nd.accidents_per_year(1e-9).values()) == 1
    with pytest.raises(ValueError, match="positive"):
        nd.accidents_per_year(0)


def test_each_year_has_its_own_resample_fixed_by_the_seed():
    per_year = {2005: 50, 2006: 50}
    year, serial, source = nd.resample_accidents(1000, per_year, seed=1)
    assert year.tolist() == [2005] * 50 + [2006] * 50
    assert serial.tolist() == list(range(1, 51)) * 2
    assert (np.diff(source[:50]) >= 0).all() and source.max() < 1000
    assert not np.array_equal(source[:50], source[50:])
    again = nd.resample_accidents(1000, {2006: 50}, seed=1)[2]
    assert np.array_equal(again, source[50:])  # a year's draw does not depend on the others
    assert not np.array_equal(nd.resample_accidents(1000, per_year, seed=2)[2], source)


def test_expand_lists_every_child_of_every_parent_in_order():
    parent, child = nd.expand(np.array([10, 0, 5, 10]), np.array([2, 1, 0, 3]))
    assert parent.tolist() == [0, 0, 1, 3, 3, 3]
    assert child.tolist() == [10, 11, 0, 10, 11, 12]


def test_29_february_becomes_28_outside_leap_years():
    year = np.array([2005, 2008, 2000, 2100, 2013])
    month = np.array([2, 2, 2, 2, 3])
    day = np.array([29, 29, 29, 29, 29])
    assert nd.valid_day(year, month, day).tolist() == [28, 29, 29, 28, 29]


def test_a_vehicle_takes_occupants_of_its_category_else_its_group_else_any():
    sample_catv = np.array([7, 7, 33, 37, 1])
    rng = np.random.default_rng(0)
    catv = np.array([7] * 50 + [33] * 10 + [40] * 10 + [0] * 10 + [-1] * 10)
    picked = nd.pick_same_category(catv, sample_catv, rng)
    assert set(picked[:50]) == {0, 1}
    assert set(picked[50:60]) == {2}
    assert set(picked[60:70]) == {3}  # tramway (40): the bus of the same group
    assert set(picked[70:]) <= set(range(5)) and len(set(picked[70:])) > 1  # no group: any


def test_prior_shift_brings_the_mean_probabilities_to_the_targets():
    logits = np.random.default_rng(0).normal(size=(5000, 4)) + np.array([2.0, -1.0, 1.0, 0.0])
    targets = np.array([0.42, 0.03, 0.18, 0.37])
    shift = nd.fit_prior_shift(logits, targets)
    assert shift[0] == 0
    assert np.allclose(nd.softmax(logits + shift).mean(axis=0), targets, atol=1e-6)


def test_prior_shift_counts_each_row_as_many_times_as_its_weight():
    logits = np.random.default_rng(1).normal(size=(300, 4))
    repeats = np.random.default_rng(2).integers(1, 5, 300)
    targets = np.array([0.42, 0.03, 0.18, 0.37])
    expanded = nd.fit_prior_shift(np.repeat(logits, repeats, axis=0), targets)
    assert np.allclose(nd.fit_prior_shift(logits, targets, weights=repeats.astype(float)), expanded)


def test_distinct_rows_give_each_row_its_combination():
    features = np.array([[1, 7], [2, 7], [1, 7], [-1, 99], [2, 7]])
    first, combination = nd.distinct_rows(features)
    assert first.tolist() == [0, 1, 3]
    assert combination.tolist() == [0, 1, 0, 2, 1]
    assert (features[first][combination] == features).all()


def test_severity_features_split_secu_and_band_ages():
    features = nd.severity_features(
        user_category=np.array([1, 3]),
        catv=np.array([7, 40]),
        age=np.array([30, -1]),
        secu=np.array([11, 2]),
        built_up_area=np.array([2, 1]),
        collision_type=np.array([-1, 6]),
        fixed_obstacle=np.array([0, 13]),
        lighting=np.array([1, 5]),
    )
    assert features.tolist() == [[1, 2, 3, 1, 1, 2, -1, 0, 1], [3, 5, -1, 2, -1, 1, 6, 13, 5]]


# --- the files --------------------------------------------------------------------------------


def test_plan_keeps_every_vehicle_of_each_accident_and_all_occupants_of_a_sample_vehicle(shared_baac_dir):
    source = nd.read_source_year(shared_baac_dir / "datagouv_yearly" / str(nd.SOURCE_YEAR))
    sample = nd.read_sample(SAMPLE_DIR)
    plan = nd.plan_national_data(source, sample, SCALE, seed=42)
    for accident, source_row in enumerate(plan.accident_source[:300]):
        start, count = source.vehicle_start[source_row], source.vehicle_count[source_row]
        assert plan.vehicle_source[plan.vehicle_accident == accident].tolist() == list(
            range(start, start + count)
        )
    source_num_acc = source.accidents["Num_Acc"].to_numpy()
    vehicle_num_acc = source.vehicles["Num_Acc"].to_numpy()
    assert (
        vehicle_num_acc[plan.vehicle_source] == source_num_acc[plan.accident_source][plan.vehicle_accident]
    ).all()
    # The occupants of a vehicle are one sample vehicle's whole list, of the same category.
    users_per_vehicle = np.bincount(plan.user_vehicle, minlength=len(plan.vehicle_source))
    assert users_per_vehicle.sum() == len(plan.user_source)
    sample_vehicle = np.repeat(np.arange(len(sample.user_count)), sample.user_count)
    picked = sample_vehicle[plan.user_source]
    first = np.cumsum(users_per_vehicle) - users_per_vehicle
    has_users = users_per_vehicle > 0
    assert (users_per_vehicle[has_users] == sample.user_count[picked[first[has_users]]]).all()
    catv = nd.codes(source.vehicles["catv"])[plan.vehicle_source]
    same = sample.vehicle_catv[picked[first[has_users]]] == catv[has_users]
    assert same.all() or set(catv[has_users][~same]) == {40}


def test_headers_are_the_samples_and_files_are_latin1(national, shared_baac_dir):
    for table in (*BAAC_TABLES, HOLIDAYS):
        header = (national / table.kaggle_file).read_bytes().split(b"\n", 1)[0]
        assert header == (SAMPLE_DIR / table.kaggle_file).read_bytes().split(b"\n", 1)[0]
    assert (national / "holidays.csv").read_bytes() == (SAMPLE_DIR / "holidays.csv").read_bytes()
    # Addresses are the 2013 file's, byte for byte in latin-1 (no UTF-8 double encoding).
    real = pd.read_csv(
        shared_baac_dir / "datagouv_yearly" / "2013" / "caracteristiques_2013.csv",
        dtype=str,
        keep_default_na=False,
        encoding="latin-1",
    )
    addresses = set(read(national, CARACTERISTICS)["adr"])
    assert addresses <= set(real["adr"])
    assert any(not a.isascii() for a in addresses)
    for table in (PLACES, USERS, VEHICLES):
        assert (national / table.kaggle_file).read_bytes().isascii()


def test_columns_are_written_in_the_sample_formats(national):
    for table in BAAC_TABLES:
        frame = read(national, table)
        for column in table.columns:
            pattern = STYLE_PATTERNS[nd.column_style(table.name, column)]
            values = frame[column][frame[column] != ""]
            assert values.str.fullmatch(pattern).all(), f"{table.name}.{column}"
            if nd.column_style(table.name, column) != "text":
                assert not values.str.match(r"-?0\d").any(), f"{table.name}.{column} has leading zeros"


def test_rows_of_the_four_tables_hold_together(national):
    accidents, places = read(national, CARACTERISTICS), read(national, PLACES)
    vehicles, users = read(national, VEHICLES), read(national, USERS)
    assert places["Num_Acc"].tolist() == accidents["Num_Acc"].tolist()  # one place per accident
    assert accidents["Num_Acc"].is_unique
    assert set(vehicles["Num_Acc"]) == set(accidents["Num_Acc"])  # every accident has vehicles
    vehicle_keys = set(zip(vehicles["Num_Acc"], vehicles["num_veh"], strict=True))
    assert len(vehicle_keys) == len(vehicles)
    assert set(zip(users["Num_Acc"], users["num_veh"], strict=True)) <= vehicle_keys
    assert 1.2 < len(users) / len(vehicles) < 1.6  # the sample's 1.37 occupants per vehicle


def test_accident_numbers_years_and_dates_are_valid(national):
    accidents = read(national, CARACTERISTICS)
    num_acc = accidents["Num_Acc"].astype(np.int64)
    year = num_acc // 100_000_000
    assert (2000 + accidents["an"].astype(int) == year).all()
    assert dict(Counter(year.tolist())) == nd.accidents_per_year(SCALE)
    for y, serials in (num_acc % 100_000_000).groupby(year):
        assert serials.tolist() == list(range(1, len(serials) + 1)), y
    for y, m, d in zip(year, accidents["mois"].astype(int), accidents["jour"].astype(int), strict=True):
        dt.date(y, m, d)


def test_severity_shares_are_near_the_national_targets(national):
    grav = read(national, USERS)["grav"].astype(int)
    n = len(grav)
    for code, target in nd.SEVERITY_TARGETS.items():
        share = (grav == code).mean()
        assert abs(share - target) < 4 * np.sqrt(target * (1 - target) / n) + 0.005, (code, share)


def test_same_seed_same_bytes_other_seed_other_bytes(national, shared_baac_dir, tmp_path):
    source = shared_baac_dir / "datagouv_yearly" / str(nd.SOURCE_YEAR)
    again = tmp_path / "again"
    nd.generate_national_data(again, SCALE, 42, source_dir=source, log=lambda _: None)
    other = tmp_path / "other"
    nd.generate_national_data(other, SCALE, 7, source_dir=source, log=lambda _: None)
    for table in BAAC_TABLES:
        assert (again / table.kaggle_file).read_bytes() == (national / table.kaggle_file).read_bytes()
        assert (other / table.kaggle_file).read_bytes() != (national / table.kaggle_file).read_bytes()


def test_the_raw_loader_takes_every_row(national, tmp_path):
    lines = {
        t.name: sum(1 for _ in csv.reader((national / t.kaggle_file).open(encoding="latin-1"))) - 1
        for t in RAW_TABLES.values()
    }
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        for table in RAW_TABLES.values():
            result = load_raw_table(conn, table, [national / table.kaggle_file], list(nd.YEARS))
            assert result.rejected_rows == 0, (table.name, result.rejected_by_reason)
            assert result.loaded_rows == lines[table.name], table.name
