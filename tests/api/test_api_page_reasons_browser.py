"""The prediction page in a real offline Chromium, on the tiny champion: the top reasons under
the bars (the API's own words), and a champion stored without explanations still predicting
with a note saying why there are no reasons."""

from __future__ import annotations

import httpx
import pytest

from tests.browser import DESKTOP, PHONE, assert_offline, offline_chromium, overlaps
from tests.servers import uvicorn_server

pytestmark = pytest.mark.browser

#: The boxes that must not overlap one another (as tests/test_api_e2e.py checks), the reasons too.
PAGE_BOXES = "header, fieldset, .actions, aside, label, select, input, button, .hint, #reasons li"


def predict_on_the_page(browser, base_url: str, viewport: dict):
    """Open the page, submit the typical road user: the page and the body it sent."""
    page = browser.new_page(viewport=viewport)
    page.goto(base_url + "/")
    page.wait_for_selector("#f-user_category_code")
    page.wait_for_function("document.getElementById('when-date').value !== ''")
    page.select_option("#f-user_category_code", "3")  # a pedestrian
    page.select_option("#f-vehicle_category_code", "14")  # hit by a heavy goods vehicle
    with page.expect_request("**/predict?explain=true") as request:
        page.click("#submit")
    page.wait_for_selector(".bar")
    return page, request.value.post_data_json


def test_the_page_shows_the_top_reasons_under_the_bars(champion, tmp_path):
    with uvicorn_server(champion.tracking_uri, tmp_path) as server, offline_chromium() as browser:
        for viewport in (DESKTOP, PHONE):
            page, body = predict_on_the_page(browser, server.base_url, viewport)
            page.wait_for_selector("#reasons li")
            assert_offline(page)
            answer = httpx.post(server.base_url + "/predict?explain=true", json=body, timeout=30).json()
            texts = [r["text"] for r in answer["explanation"]["reasons"]]
            assert 1 <= len(texts) <= 5
            assert page.locator("#reasons li").all_inner_texts() == texts
            assert page.locator("#reasons li.up").count() == sum(
                r["contribution"] > 0 for r in answer["explanation"]["reasons"]
            )
            reference = 100 * answer["explanation"]["reference_severe_probability"]
            assert f"{reference:.1f} %" in page.inner_text("#why")
            # Under the bars, inside the result card, overlapping nothing.
            bars, why = page.locator("#bars").bounding_box(), page.locator("#why").bounding_box()
            assert why["y"] >= bars["y"] + bars["height"]
            assert overlaps(page, PAGE_BOXES) == []
            assert page.locator("#why-note").is_hidden()
            page.fill("#f-age", "81")  # stale with the rest of the result
            assert "stale" in page.get_attribute("aside", "class")
            page.close()


def test_a_champion_without_explanations_still_predicts_with_a_note(champion_without_reference, tmp_path):
    with uvicorn_server(champion_without_reference, tmp_path) as server, offline_chromium() as browser:
        page, _ = predict_on_the_page(browser, server.base_url, DESKTOP)
        page.wait_for_selector("#why-note:not([hidden])")
        assert page.locator(".bar").count() == 4
        assert page.locator("#why").is_hidden()
        assert page.inner_text("#why-note").startswith("No reasons: Champion version 1 was trained before")
        assert page.inner_text("#errors") == ""
