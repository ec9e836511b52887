"""GET /calendar: the holidays the page derives its flags from, read as dbt reads them."""

from __future__ import annotations

from api.calendar import read_holiday_calendar
from ml.defaults import HOLIDAYS_FILE, local_source_dir


def test_the_calendar_is_the_holiday_file_dbt_loads(client):
    calendar = client.get("/calendar").json()
    assert calendar["covered_years"] == list(range(2005, 2017))
    assert len(calendar["holidays"]) == 131  # 132 lines; two holidays share 1 May 2008
    assert calendar["holidays"]["2016-07-14"] == "Bastille Day"
    # One row per date, names joined as stg_holidays joins them.
    assert calendar["holidays"]["2008-05-01"] == "Ascension Thursday / Labour Day"
    assert calendar == read_holiday_calendar(local_source_dir() / HOLIDAYS_FILE).__dict__


def test_a_missing_holiday_file_is_an_empty_calendar(tmp_path):
    calendar = read_holiday_calendar(tmp_path / HOLIDAYS_FILE)
    assert (calendar.holidays, calendar.covered_years) == ({}, [])
