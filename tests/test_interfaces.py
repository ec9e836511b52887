"""Each tool's UI as a user opens it after `make run`, in Chromium with no network: the Dagster
webserver, the dbt docs site and the MLflow UI, on the session's pipeline run (the page and
/docs have their tests beside the API's). Each saves a screenshot for the README."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ml.registry import MODEL_DESCRIPTION, REGISTERED_MODEL
from tests.browser import DESKTOP, assert_offline, offline_chromium, screenshot, serving
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

BIN = Path(sys.executable).parent
#: Each wait is bounded: a UI that does not render what is looked for within this fails.
RENDER_MS = 60_000


def test_dagster_ui_shows_the_raw_dbt_and_ml_assets_and_one_run(pipeline_run):
    port = free_port()
    command = [str(BIN / "dagster-webserver"), "-m", "orchestration.definitions"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    with serving(command, f"http://127.0.0.1:{port}/server_info", env=pipeline_run.env) as url:
        base_url = url.removesuffix("/server_info")
        with offline_chromium() as browser:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # A new instance greets its first visitor with a newsletter form: skip it.
            page.add_locator_handler(
                page.get_by_text("Join the Dagster community"),
                lambda: page.get_by_role("button", name="Skip").click(),
            )
            # Everything upstream of the champion: raw tables, dbt models, the ML assets.
            page.goto(base_url + "/assets/champion_model?view=lineage&lineageScope=upstream&lineageDepth=10")
            for name in ("users", "holidays", "stg_users", "fct_road_users", "ml_features", "severity_model"):
                page.get_by_text(name, exact=True).first.wait_for(timeout=RENDER_MS)
            for group in ("raw", "staging", "intermediate", "marts", "ml"):
                assert page.get_by_text(group, exact=True).count() >= 1, group
            assert_offline(page)
            page.wait_for_timeout(2000)  # the graph settles
            screenshot(page, "dagster-lineage.png")
            # `make run` is one run of baac_pipeline (every asset, dbt built once).
            page.goto(base_url + "/runs")
            page.get_by_role("link", name="baac_pipeline").first.wait_for(timeout=RENDER_MS)
            assert page.get_by_role("link", name="baac_pipeline").count() == 1
            page.goto(base_url + "/assets?view=flat")
            page.get_by_role("link", name="champion_model").first.wait_for(timeout=RENDER_MS)
            screenshot(page, "dagster-assets.png")


def test_dbt_docs_open_on_the_project_overview(docs_target, http_server_for):
    site = http_server_for(docs_target)  # a plain static server, as any web host would serve it
    with offline_chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(site.base_url + "/index.html#!/overview")
        heading = page.get_by_role("heading", name="Road-accident severity in France: the dbt project")
        heading.wait_for(timeout=RENDER_MS)
        assert page.get_by_text("Welcome!").count() == 0
        assert page.get_by_role("cell", name="intermediate", exact=True).count() == 1  # the layers
        # The model and the API, as exposures (consumers of ml_features).
        assert page.locator("text=Exposures >> visible=true").count() == 1
        assert_offline(page)
        screenshot(page, "dbt-docs.png")


def test_mlflow_model_page_shows_its_description(pipeline_run):
    port = free_port()
    command = [sys.executable, "-m", "orchestration.mlflow_ui", "--port", str(port)]  # make mlflow
    with serving(command, f"http://127.0.0.1:{port}/health", env=pipeline_run.env) as url:
        base_url = url.removesuffix("/health")
        with offline_chromium() as browser:
            page = browser.new_page(viewport=DESKTOP)
            page.goto(f"{base_url}/#/models/{REGISTERED_MODEL}")
            page.get_by_text(MODEL_DESCRIPTION[:60]).first.wait_for(timeout=RENDER_MS)
            page.get_by_text("@ champion").first.wait_for(timeout=RENDER_MS)
            assistant = page.get_by_role("button", name="Close")  # MLflow's chat panel: not ours
            if assistant.count():
                assistant.first.click()
            assert_offline(page)
            screenshot(page, "mlflow-model.png")
