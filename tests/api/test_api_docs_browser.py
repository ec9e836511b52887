"""/docs (Swagger UI) and /redoc (ReDoc) in a real Chromium with the network unreachable:
every request outside the service is refused and recorded, and the pages still render."""

from __future__ import annotations

import pytest

from tests.browser import offline_chromium, screenshot
from tests.servers import uvicorn_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(champion, tmp_path_factory):
    with uvicorn_server(champion.tracking_uri, tmp_path_factory.mktemp("predictions")) as server:
        yield server


@pytest.fixture
def offline_page(server):
    outside: list[str] = []
    with offline_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def only_the_service(route):
            if route.request.url.startswith(server.base_url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_service)
        yield page, outside


def test_swagger_ui_renders_offline_with_the_predict_operation(server, offline_page):
    page, outside = offline_page
    page.goto(f"{server.base_url}/docs")
    operation = page.locator("#operations-predict-predict_predict_post")
    operation.wait_for(timeout=20_000)
    assert "/predict" in operation.inner_text()
    operation.locator(".opblock-summary").click()  # open it: the example body and the responses
    page.wait_for_selector("#operations-predict-predict_predict_post .responses-table")
    responses = page.locator(
        "#operations-predict-predict_predict_post .response-col_status"
    ).all_inner_texts()
    assert {"200", "400", "413", "415", "422", "503"} <= {r.strip() for r in responses}
    assert "vehicle_category_code" in page.locator("#operations-predict-predict_predict_post").inner_text()
    screenshot(page, "api-docs.png")
    assert outside == []


def test_redoc_renders_offline(server, offline_page):
    page, outside = offline_page
    page.goto(f"{server.base_url}/redoc")
    page.wait_for_selector("text=Road-accident severity", timeout=20_000)
    heading = page.locator("h2", has_text="Score one road user")
    heading.first.wait_for(timeout=20_000)
    assert "application/json" in page.inner_text("body")  # the request body of /predict, rendered
    # ReDoc's bundle hard-codes the "API docs by Redocly" logo of its footer: the one thing
    # that stays blank offline.
    assert set(outside) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, outside
