"""The service for real: uvicorn on loopback, called over HTTP, and its page in Chromium."""

from __future__ import annotations

import httpx
import pytest

from tests.browser import (
    DESKTOP,
    PHONE,
    assert_offline,
    offline_chromium,
    overlaps,
    screenshot,
)
from tests.servers import uvicorn_server

#: On the champion the whole pipeline trains on the sample (the session's ``pipeline_run``).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(pipeline_run, tmp_path_factory):
    """`uvicorn api.main:app`, as `make serve` starts it, on the pipeline's champion."""
    log_dir = tmp_path_factory.mktemp("predictions")
    with uvicorn_server(pipeline_run.tracking_uri, log_dir) as running:
        yield running.base_url, log_dir


def test_end_to_end_over_http(server):
    base_url, log_dir = server
    with httpx.Client(base_url=base_url, timeout=30) as http:
        assert http.get("/health").json() == {"status": "ok", "model_version": "1"}
        features = http.get("/features").json()
        body = {f["name"]: f["typical"] for f in features["features"]}
        answer = http.post("/predict", json=body).json()
        assert answer["model"]["version"] == "1"
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
        assert http.post("/predict", json={**body, "sex_code": 7}).status_code == 422
        assert "text/html" in http.get("/").headers["content-type"]
        assert http.get("/openapi.json").json()["info"]["title"] == "Road-accident severity"
        assert "baac_api_predictions_total" in http.get("/metrics").text
    assert list(log_dir.glob("date=*/predictions-*.csv"))  # the prediction log of today


#: The boxes that must not overlap one another on the page (the result card included).
PAGE_BOXES = "header, fieldset, .actions, aside, label, select, input, button, .hint, #reasons li"


def open_page(browser, base_url: str, viewport: dict):
    page = browser.new_page(viewport=viewport)
    page.goto(base_url + "/")
    page.wait_for_selector("#f-user_category_code")
    page.wait_for_function("document.getElementById('when-date').value !== ''")
    return page


def sent_body(page) -> dict:
    """Submit the form: the body the page posts to /predict (asking why: explain=true), once
    its answer is shown. The previous answer's bars are removed first: waiting for bars that
    are already there returned before a slow answer came back, with the result still stale."""
    page.evaluate("document.getElementById('bars').replaceChildren()")
    with page.expect_request("**/predict?explain=true") as request:
        page.click("#submit")
    page.wait_for_selector(".bar")
    return request.value.post_data_json


@pytest.mark.browser
def test_the_page_on_a_phone_predicts_and_nothing_overlaps(server):
    base_url, _ = server
    typical = {f["name"]: f["typical"] for f in httpx.get(base_url + "/features").json()["features"]}
    model = httpx.get(base_url + "/model").json()
    with offline_chromium() as browser:
        page = open_page(browser, base_url, PHONE)
        assert_offline(page)
        assert page.evaluate("document.documentElement.scrollWidth") == PHONE["width"]
        assert overlaps(page, PAGE_BOXES) == []
        # The header says what the champion learnt from and how well it did on the test split.
        trained = page.inner_text("#trained")
        rows = sum(model["data"]["rows_per_split"].values())
        assert f"version 1, trained on the BAAC road users of 2016: {rows:,} rows (" in trained
        assert f"macro-F1 {model['test_metrics']['macro_f1']:.3f}" in trained
        # Plain labels: the code book's words, no codes, no "NULL".
        assert page.locator("#f-user_category_code option").all_inner_texts()[:4] == [
            "— not recorded —",
            "driver",
            "passenger",
            "pedestrian",
        ]
        assert "NULL" not in page.inner_text("form")
        # The default is the typical real road user the champion registered, on a date that
        # gives its day of the week and holiday flags.
        assert page.input_value("#when-date") == "2016-12-02"  # the first Friday of December 2016
        assert page.inner_text("#when-derived") == "Friday · weekday · not a public holiday or its eve"
        body = sent_body(page)
        assert body == typical
        assert page.locator(".bar").count() == 4
        percentages = [float(t.rstrip(" %")) for t in page.locator(".bar .pct").all_inner_texts()]
        assert sum(percentages) == pytest.approx(100, abs=0.3)
        answer = httpx.post(base_url + "/predict?explain=true", json=body, timeout=30).json()
        assert page.inner_text("#prediction") == answer["label"]
        # Under the bars, the reasons the API gives, in its words.
        page.wait_for_selector("#reasons li")
        assert page.locator("#reasons li").all_inner_texts() == [
            r["text"] for r in answer["explanation"]["reasons"]
        ]
        assert overlaps(page, PAGE_BOXES) == []  # the result card below the form, not over it
        screenshot(page, "page-phone.png", full_page=True)


@pytest.mark.browser
def test_the_page_on_a_desktop_derives_when_marks_stale_hints_and_resets(server):
    base_url, _ = server
    with offline_chromium() as browser:
        page = open_page(browser, base_url, DESKTOP)
        assert overlaps(page, PAGE_BOXES) == []
        form, result = page.locator("form").bounding_box(), page.locator("aside").bounding_box()
        assert result["x"] >= form["x"] + form["width"]  # side by side
        typical = sent_body(page)
        when = ["month", "hour", "day_of_week", "is_weekend", "is_public_holiday", "is_holiday_eve"]
        # Flags from the holiday file dbt loads: Bastille Day 2016 (a Thursday), its eve, a
        # Saturday; 2018 is beyond the file, so its flags are unknown (NULL in dbt too).
        for day, time_of_day, expected in [
            ("2016-07-14", "18:30", [7, 18, 4, 0, 1, 0]),
            ("2016-07-13", "09:00", [7, 9, 3, 0, 0, 1]),
            ("2016-07-16", "23:59", [7, 23, 6, 1, 0, 0]),
            ("2018-07-14", "00:00", [7, 0, 6, 1, None, None]),
        ]:
            page.fill("#when-date", day)
            page.fill("#when-time", time_of_day)
            assert [sent_body(page)[k] for k in when] == expected, day
        page.fill("#when-date", "2016-07-14")
        page.fill("#when-time", "18:30")
        assert "public holiday (Bastille Day)" in page.inner_text("#when-derived")
        # A pedestrian: the hint says whose vehicle the vehicle fields describe.
        assert page.locator("#pedestrian-hint").is_hidden()
        page.select_option("#f-user_category_code", "3")
        assert page.locator("#pedestrian-hint").is_visible()
        page.select_option("#f-seat_position_code", "")  # not recorded
        page.select_option("#f-safety_equipment_code", "")
        page.select_option("#f-safety_equipment_use_code", "")
        page.select_option("#f-pedestrian_location_code", "3")  # on a crossing without lights
        page.select_option("#f-pedestrian_action_code", "3")  # crossing
        page.fill("#f-age", "80")
        body = sent_body(page)
        shown = page.inner_text("#prediction")
        assert page.locator("#stale").is_hidden()
        assert overlaps(page, PAGE_BOXES) == []
        page.evaluate("window.scrollTo(0, 0)")  # the header, "when" and the result
        screenshot(page, "page-desktop.png")
        page.fill("#f-age", "81")  # after a prediction, a change marks the result stale
        assert page.locator("#stale").is_visible()
        assert "stale" in page.get_attribute("aside", "class")
        page.click("#reset")
        assert page.inner_text("#prediction") == "–" and page.locator("#stale").is_hidden()
        assert sent_body(page) == typical
    assert body["user_category_code"] == 3 and body["seat_position_code"] is None and body["age"] == 80
    assert (body["safety_equipment_code"], body["pedestrian_location_code"]) == (None, 3)
    answer = httpx.post(base_url + "/predict", json=body, timeout=30).json()
    assert shown == answer["label"]
