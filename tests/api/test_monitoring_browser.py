"""/monitoring in a real Chromium with the network unreachable: the drift of a log with a
known shift (the sample's pipeline, the monitoring job), the prediction mix, the champion's
history; an unknown model version and a service with no monitoring data get a message."""

from __future__ import annotations

import pytest

from tests.browser import assert_offline, offline_chromium, screenshot
from tests.drift import SHIFTED_DAY
from tests.servers import uvicorn_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(monitored_run, tmp_path_factory):
    with uvicorn_server(
        monitored_run.pipeline.tracking_uri,
        tmp_path_factory.mktemp("predictions"),
        BAAC_MONITORING_DIR=str(monitored_run.monitoring_dir),
    ) as server:
        yield server


@pytest.fixture
def offline_page():
    """A page that can reach loopback only; ``outside`` records what it tried beyond it."""
    outside: list[str] = []
    with offline_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})

        def only_loopback(route):
            if route.request.url.startswith("http://127.0.0.1:"):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_loopback)
        yield page, outside


def test_the_page_shows_the_shifted_hour_first_and_in_red(server, offline_page):
    page, outside = offline_page
    page.goto(f"{server.base_url}/monitoring")
    page.wait_for_selector("#drift-table table", timeout=20_000)
    headers = page.locator("#drift-table th").all_inner_texts()
    assert str(SHIFTED_DAY) in headers
    first = page.locator("#drift-table tbody tr").nth(1)  # after the row of request counts
    assert first.locator("td").first.inner_text() == "hour"
    assert "alert" in first.locator("td").nth(2).get_attribute("class")
    assert page.locator("#drift-table td.alert").count() == 1
    assert page.locator("#summary").inner_text() == (
        "Champion: road_accident_severity version 1; alert above PSI 0.2."
    )
    assert "unhurt" in page.locator("#mix-table").inner_text()
    assert "single accident year" in page.locator("#notes").inner_text()
    history = page.locator("#history-table tbody tr").first.locator("td").all_inner_texts()
    assert history[0] == "1" and "champion" in history[1]
    screenshot(page, "monitoring.png", full_page=True)
    assert outside == []  # nothing asked of the outside world (before the probe below)
    assert_offline(page)


def test_an_unknown_model_version_is_a_message_on_the_page(server, offline_page):
    page, _ = offline_page
    page.goto(f"{server.base_url}/monitoring?model_version=99")
    page.wait_for_selector("#error:not([hidden])", timeout=20_000)
    assert page.locator("#error").inner_text() == (
        "No version '99' of road_accident_severity; registered versions: 1"
    )


def test_a_version_keeps_the_mix_to_its_predictions(server, offline_page):
    page, _ = offline_page
    page.goto(f"{server.base_url}/monitoring?model_version=1")
    page.wait_for_selector("#mix-table table", timeout=20_000)
    assert page.locator("#version").input_value() == "1"
    versions = {row.split("\t")[1] for row in page.locator("#mix-table tbody tr").all_inner_texts()}
    assert versions == {"1"}


def test_no_monitoring_data_yet_is_said_on_the_page(champion, tmp_path, offline_page):
    page, _ = offline_page
    with uvicorn_server(
        champion.tracking_uri, tmp_path / "predictions", BAAC_MONITORING_DIR=str(tmp_path / "none")
    ) as server:
        page.goto(f"{server.base_url}/monitoring")
        page.wait_for_selector("#notes p", timeout=20_000)
        assert page.locator("#notes").inner_text().startswith("No monitoring data yet")
        assert page.locator("#drift-table").inner_text() == "No day to show."
