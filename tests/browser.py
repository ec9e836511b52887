"""One way to drive a real headless Chromium offline, and to start the servers it looks at.

Every browser test sees only loopback: the proxy is a dead port on 127.0.0.1 and every host
name but the loopback ones fails to resolve, so a page that needs a CDN shows it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ml.defaults import PROJECT_ROOT
from tests.servers import loopback_client

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
#: The network unreachable but loopback (which Chromium never sends through a proxy).
OFFLINE_FLAGS = [
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
#: Where the browser tests write their screenshots: data/screenshots (git-ignored), so that
#: `make test` leaves the work tree clean; `make screenshots` points BAAC_SCREENSHOTS_DIR at
#: docs/screenshots, the README's.
SCREENSHOTS = Path(os.environ.get("BAAC_SCREENSHOTS_DIR") or PROJECT_ROOT / "data" / "screenshots").resolve()
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}

#: Pairs of visible boxes that overlap, neither inside the other: [[a, b, overlap px²], ...].
OVERLAPS_JS = """(selector) => {
  const seen = [...document.querySelectorAll(selector)].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden";
  });
  const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (e.name ? "[name=" + e.name + "]" : "") + (e.textContent || "").trim().slice(0, 30);
  const found = [];
  for (let i = 0; i < seen.length; i++) {
    for (let j = i + 1; j < seen.length; j++) {
      const [a, b] = [seen[i], seen[j]];
      if (a.contains(b) || b.contains(a)) continue;
      const [p, q] = [a.getBoundingClientRect(), b.getBoundingClientRect()];
      const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
      const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (w > 0.5 && h > 0.5) found.push([name(a), name(b), Math.round(w * h)]);
    }
  }
  return found;
}"""


@contextmanager
def offline_chromium() -> Iterator:
    """A headless Chromium (Playwright) that can reach loopback only."""
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), (
        f"Chromium is needed at {CHROMIUM} (make chromium, apt-get install chromium, or set CHROMIUM_PATH)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS + OFFLINE_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def assert_offline(page) -> None:
    """The page's own fetch cannot leave the machine."""
    outcome = page.evaluate(
        "() => fetch('https://cdn.jsdelivr.net/', {mode: 'no-cors'}).then(() => 'reached', () => 'blocked')"
    )
    assert outcome == "blocked"


def overlaps(page, selector: str) -> list:
    return page.evaluate(OVERLAPS_JS, selector)


def screenshot(page, name: str, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


@contextmanager
def serving(
    command: list[str], url: str, *, env: dict | None = None, cwd: Path = PROJECT_ROOT, timeout: float = 120
) -> Iterator[str]:
    """Start ``command`` (a server) and wait until ``url`` answers 200; stop it afterwards."""
    # A file, not a pipe: a chatty server would block on a full pipe nobody reads.
    output = tempfile.TemporaryFile(mode="w+")
    log = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group: its children stop with it
    )
    try:
        deadline = time.monotonic() + timeout
        with loopback_client(timeout=2) as client:
            while True:
                if log.poll() is not None:
                    output.seek(0)
                    raise RuntimeError(f"{command[0]} exited: {output.read()[-4000:]}")
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(command)} did not answer {url} within {timeout:.0f} s")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(log.pid, 15)
        try:
            log.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(log.pid, 9)
            log.wait()
        output.close()
