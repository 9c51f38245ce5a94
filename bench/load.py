"""Load test of the dashboard: browser sessions at once against one local server (loopback only, bounded).

    IG_DATA_DIR=../shared/data .venv/bin/python -m bench.load [--sessions 8]

1. The same inputs (sample photos on the Vision page, texts on the Language page) run one at a time on a fresh
   server and all at once, one browser session each, on another fresh server: the downloaded attributions
   must be byte-identical.
2. A Language request submitted during another session's Vision scan: its time over its time alone.
3. The server's memory (resident set) after the sessions closed and were let go, over its warm level.
Writes bench/RESULTS-load.md. Needs Debian's chromium; every request goes to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import pathlib
import sys
import tempfile
import time
from dataclasses import dataclass

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the browser tests' server and chromium helpers (streamlit_browser)

TEXTS = ["the shareholders claimed more", "and n minutes after the trading halt came news that the",
         "the company said its profit", "stock prices fell sharply in", "the board of directors will meet",
         "analysts expect the bank to", "the president said he would", "interest rates rose in the"]
# Streamlit keeps a closed session (its state, images and downloads) for this long in case it reconnects
# (server.disconnectedSessionTTL, 120 s by default): the measuring server uses a shorter one
SESSION_TTL_S = 10
LATE_TEXT = "the chairman said the company"  # the Language-during-Vision request: a text no other job uses
IDLE = ("() => { const app = document.querySelector(\"[data-testid='stApp']\");"
        " return app && app.getAttribute('data-test-script-state') === 'notRunning'; }")
TIMEOUT_MS = 600_000


@dataclass(frozen=True)
class Job:
    page: str  # "Vision" or "Language"
    value: str  # a photo path or a text
    fast: bool = True  # a cheap fixed rule (plumbing); False: the default settings (adaptive, 1%)

    @property
    def label(self) -> str:
        return f"{self.page}: {pathlib.Path(self.value).name if self.page == 'Vision' else self.value}"


def jobs_for(sessions: int, photos: list[pathlib.Path]) -> list[Job]:
    """Different inputs, three photos to one text."""
    texts, pictures = iter(TEXTS), iter(photos)
    return [Job("Language", next(texts)) if i % 4 == 3 else Job("Vision", str(next(pictures)))
            for i in range(sessions)]


def resident_mb(pid: int) -> float:
    """The server's resident memory, its child processes included (from /proc)."""
    total = 0
    for status in pathlib.Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(fields.get("Pid", 0)) == pid or int(fields.get("PPid", 0)) == pid:
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total / 1024


async def wait_idle(page) -> None:
    await page.wait_for_timeout(300)
    await page.wait_for_function(IDLE, timeout=TIMEOUT_MS)


async def fast_settings(page) -> None:
    main = page.locator("[data-testid='stMain']")
    await main.get_by_text("Quadrature rule").wait_for()
    await page.locator("[data-testid='stSelectbox']").filter(has_text="Quadrature rule").click()
    await page.get_by_role("option", name="trapezoid", exact=True).click()
    await wait_idle(page)  # each change takes effect at once, in a rerun of its own
    steps = page.get_by_label("Steps (adaptive: starting grid)")
    await steps.fill("4")
    await steps.press("Tab")
    await main.get_by_text("Current: rule trapezoid, steps 4").wait_for()
    await wait_idle(page)


async def visit(browser, url: str) -> None:
    """A new session that opens the Home page and leaves."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.locator("[data-testid='stMain']").get_by_text("Quadrature rule").wait_for(timeout=TIMEOUT_MS)
    finally:
        await context.close()
    await asyncio.sleep(2)


async def run_job(browser, url: str, job: Job, started: asyncio.Event | None = None) -> tuple[str, float]:
    """One browser session: settings, the page, the input, Explain; returns (sha256 of the download, seconds from
    Explain to the result). `started` is set once the scan shows its progress bar."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    try:
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        await page.goto(url)
        main = page.locator("[data-testid='stMain']")
        if job.fast:
            await fast_settings(page)
        else:
            await main.get_by_text("Quadrature rule").wait_for()
        await page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=job.page, exact=True).click()
        if job.page == "Vision":
            await main.get_by_text("Upload", exact=True).click()
            await wait_idle(page)
            await page.locator("input[type='file']").set_input_files(job.value)
            await main.get_by_text(f"{pathlib.Path(job.value).name} as the network sees it").wait_for()
            done, download = main.get_by_text("1. Integrated gradients beside"), "Attributions (.npy"
        else:
            box = main.get_by_role("textbox", name="Text: the words before the one to predict")
            await box.fill(job.value)
            done, download = main.get_by_text("3. Word scores"), "Download the table (CSV)"
        await wait_idle(page)
        start = time.perf_counter()
        await main.get_by_role("button", name="Explain", exact=True).click()
        if started is not None:
            await main.locator("[data-testid='stProgress']").first.wait_for()
            started.set()
        await done.wait_for()
        seconds = time.perf_counter() - start
        async with page.expect_download() as info:
            await main.get_by_role("button", name=download).first.click()
        data = pathlib.Path(await (await info.value).path()).read_bytes()
        return hashlib.sha256(data).hexdigest(), seconds
    finally:
        await context.close()


async def measure(sessions: int, photos: list[pathlib.Path], log_dir: pathlib.Path, data_dir: str,
                  interleave: bool = True) -> dict:
    """The figures of one load run; interleave=False leaves out the Language-during-Vision timing."""
    from playwright.async_api import async_playwright
    from streamlit_browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server

    jobs = jobs_for(sessions, photos[:sessions])
    spare_photos = photos[sessions:sessions + 3]
    figures: dict = {"sessions": sessions, "jobs": [j.label for j in jobs]}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            with streamlit_server(log_dir / "sequential", IG_DATA_DIR=data_dir) as url:
                start = time.perf_counter()
                sequential = [await run_job(browser, url, job) for job in jobs]
                figures["sequential_s"] = time.perf_counter() - start
                if interleave:  # the text the Language-during-Vision measurement uses, alone on a warm server
                    _, figures["language_alone_s"] = await run_job(browser, url, Job("Language", LATE_TEXT, fast=False))
            with streamlit_server(log_dir / "concurrent", IG_DATA_DIR=data_dir,
                                  STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL=str(SESSION_TTL_S)) as url:
                # warm: the models loaded and each kind of scan done once (a fixed rule and the default adaptive
                # rule on a photo, a text), on inputs not among the jobs
                await run_job(browser, url, Job("Vision", str(spare_photos[0])))
                await run_job(browser, url, Job("Vision", str(spare_photos[2]), fast=False))
                await run_job(browser, url, Job("Language", TEXTS[-2]))
                figures["warm_mb"] = resident_mb(url.pid)
                start = time.perf_counter()
                concurrent = await asyncio.gather(*(run_job(browser, url, job) for job in jobs))
                figures["concurrent_s"] = time.perf_counter() - start
                figures["identical"] = [a[0] == b[0] for a, b in zip(sequential, concurrent)]
                if interleave:
                    await language_during_vision(browser, url, spare_photos[1], figures)
                # closed sessions are let go after their TTL, when the session store is next used: by a new visitor
                await asyncio.sleep(SESSION_TTL_S + 5)
                await visit(browser, url)
                figures["after_mb"] = resident_mb(url.pid)
        finally:
            await browser.close()
    return figures


async def language_during_vision(browser, url: str, photo: pathlib.Path, figures: dict) -> None:
    """A Language request while another session's Vision scan runs, both with the default settings (adaptive, 1%)."""
    scanning = asyncio.Event()
    vision = asyncio.create_task(run_job(browser, url, Job("Vision", str(photo), fast=False), started=scanning))
    await scanning.wait()
    _, figures["language_during_s"] = await run_job(browser, url, Job("Language", LATE_TEXT, fast=False))
    figures["vision_still_running"] = not vision.done()
    figures["vision_s"] = (await vision)[1]


def report(figures: dict) -> str:
    ratio = figures["language_during_s"] / figures["language_alone_s"]
    memory = figures["after_mb"] / figures["warm_mb"]
    rows = [
        ("sessions at once, different inputs", f"{figures['sessions']}", "; ".join(figures["jobs"])),
        ("downloads identical to one-at-a-time runs", f"{sum(figures['identical'])} / {len(figures['identical'])}",
         "sha256 of each session's attributions download"),
        ("all at once / one at a time: wall time (page loads included)",
         f"{figures['concurrent_s'] / figures['sequential_s']:.2f}",
         f"{figures['concurrent_s']:.1f} s / {figures['sequential_s']:.1f} s"),
        ("Language during a Vision scan / alone", f"{ratio:.2f}",
         f"{figures['language_during_s']:.2f} s / {figures['language_alone_s']:.2f} s; the Vision scan took "
         f"{figures['vision_s']:.1f} s and was {'still' if figures['vision_still_running'] else 'no longer'} "
         "running when the Language result came"),
        ("server memory after / warm", f"{memory:.2f}", f"{figures['after_mb']:.0f} MB / {figures['warm_mb']:.0f} MB"),
    ]
    lines = ["| measurement | value | detail |", "| --- | --- | --- |"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "RESULTS-load.md"))
    args = parser.parse_args()
    data_dir = os.environ.get("IG_DATA_DIR", "")
    photos = sorted((pathlib.Path(data_dir) / "imagenet_samples" / "images").glob("*.JPEG"))
    if len(photos) < args.sessions + 3:
        sys.exit("set IG_DATA_DIR to the shared data folder (its imagenet_samples photos are the inputs)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("sequential", "concurrent"):
            (pathlib.Path(tmp) / name).mkdir()
        figures = asyncio.run(measure(args.sessions, photos, pathlib.Path(tmp), str(pathlib.Path(data_dir).resolve())))
    table = report(figures)
    print(table)
    pathlib.Path(args.out).write_text(f"# Load test ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs)\n\n"
                                      f"`python -m bench.load --sessions {args.sessions}`\n\n{table}")


if __name__ == "__main__":
    main()
