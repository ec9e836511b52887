"""The service for real: uvicorn on loopback, called over HTTP, and its page in Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

from ml.defaults import PROJECT_ROOT

#: On the champion the whole pipeline trains on the sample (the session's ``pipeline_run``).
pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(pipeline_run, tmp_path_factory):
    """`uvicorn api.main:app`, as `make serve` starts it, on the pipeline's champion."""
    port = free_port()
    log_dir = tmp_path_factory.mktemp("predictions")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{pipeline_run.root / 'mlflow.db'}",
        "BAAC_PREDICTION_LOG_DIR": str(log_dir),
        "BAAC_MODEL_REFRESH_SECONDS": "0",
    }
    env.pop("BAAC_API_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {process.stdout.read()}")
            try:
                if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            raise RuntimeError("uvicorn did not answer /health within 120 s")
        yield base_url, log_dir
    finally:
        process.terminate()
        process.wait(timeout=30)


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


@pytest.mark.browser
def test_the_page_in_a_real_browser(server):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), (
        f"Chromium is needed at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
    )
    base_url, _ = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(base_url + "/")
        page.wait_for_selector("#f-user_category_code")
        # Drop-downs are labelled from the code book.
        assert page.locator("#f-user_category_code option", has_text="pedestrian (3)").count() == 1
        page.select_option("#f-user_category_code", "3")
        page.select_option("#f-vehicle_category_code", "7")
        page.select_option("#f-seat_position_code", "")  # not recorded
        page.fill("#f-age", "80")
        page.click("#submit")
        page.wait_for_selector(".bar")
        shown = page.inner_text("#prediction")
        bars = page.locator(".bar")
        assert bars.count() == 4
        percentages = [float(t.rstrip(" %")) for t in page.locator(".bar .pct").all_inner_texts()]
        assert sum(percentages) == pytest.approx(100, abs=0.3)
        assert "version 1" in page.inner_text("#model")
        # The page shows what the API answers for the same road user.
        body = page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('#form [name]')]"
            ".map(e => [e.name, e.value === '' ? null : Number(e.value)]))"
        )
        browser.close()
    assert body["user_category_code"] == 3 and body["seat_position_code"] is None and body["age"] == 80
    answer = httpx.post(base_url + "/predict", json=body, timeout=30).json()
    assert shown == answer["label"]
