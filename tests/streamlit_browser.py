"""What the real-browser tests share: chromium, a Streamlit server on a free port, waiting for reruns."""
from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def require_chromium() -> None:
    """CI must run the browser tests; elsewhere a missing chromium skips them with the fix."""
    if pathlib.Path(CHROMIUM).is_file():
        return
    if os.environ.get("CI"):
        pytest.fail(f"chromium is missing at {CHROMIUM} (apt-get install chromium); CI must run the browser tests")
    pytest.skip(f"chromium is not installed at {CHROMIUM} (apt-get install chromium)")


def launch_chromium(playwright):
    ARTIFACTS.mkdir(exist_ok=True)
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class ServerURL(str):
    """The server's URL, carrying the server's process id (for memory readings)."""

    pid: int


@contextlib.contextmanager
def streamlit_server(log_dir: pathlib.Path, **env):
    """The dashboard as the README starts it (serve.py: `streamlit run app.py`) on a free local port with extra
    environment variables; yields its URL (a ServerURL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = log_dir / "streamlit.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "serve.py"), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=ROOT, env=dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", **env),
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError(log_path.read_text()) from None
                    if time.time() > deadline:
                        raise RuntimeError("streamlit did not start within 60 s") from None
                    time.sleep(0.3)
            url = ServerURL(f"http://127.0.0.1:{port}")
            url.pid = proc.pid
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the app's script has finished its run (clicks during a rerun can be lost)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => { const app = document.querySelector(\"[data-testid='stApp']\");"
        " return app && app.getAttribute('data-test-script-state') === 'notRunning'; }", timeout=timeout_ms)


def use_fast_settings(page) -> None:
    """From the Home page: a cheap fixed rule, so a browser test checks the plumbing (accuracy is tested elsewhere)."""
    from playwright.sync_api import expect

    main = page.locator("[data-testid='stMain']")
    expect(main.get_by_text("Quadrature rule")).to_be_visible()
    page.locator("[data-testid='stSelectbox']").filter(has_text="Quadrature rule").click()
    page.get_by_role("option", name="trapezoid", exact=True).click()
    wait_idle(page)  # each change takes effect at once, in a rerun of its own
    steps = page.get_by_label("Steps (adaptive: starting grid)")
    steps.fill("4")
    steps.press("Tab")
    expect(main.get_by_text("Current: rule trapezoid, steps 4")).to_be_visible()
    wait_idle(page)


def open_page(page, title: str) -> None:
    """Through the sidebar navigation's link (a section's header can bear the same title): a fresh URL would start a
    new session without the settings."""
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=title, exact=True).click()


def full_screenshot(page, name: str) -> pathlib.Path:
    """Streamlit scrolls inside stMain, so a full-page shot needs a viewport as tall as its content."""
    wait_idle(page)
    height = page.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 50, 12_000)})
    page.wait_for_timeout(1500)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


@contextlib.contextmanager
def browser_page(name: str, timeout_ms: int = 120_000):
    """A chromium page with generous timeouts; on failure its screenshot lands in test-artifacts/NAME-failure.png."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(timeout_ms)
        expect.set_options(timeout=timeout_ms)
        try:
            yield page
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
