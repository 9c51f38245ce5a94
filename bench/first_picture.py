"""Time to the first picture on the Vision page, in a real browser (Debian chromium): from the click on Explain to
the first attribution maps on screen (the adaptive rule's starting grid, drawn under its completeness error), and to
the whole analysis, for sample photos with the page's defaults (MobileNetV2 at 224 px, the adaptive rule to 1%, the
top label and the comparison label).

    IG_DATA_DIR=../shared/data python -m bench.first_picture [--photos 20]

The server starts as the README starts it (serve.py: one torch thread fewer than cores); SERVER_THREADS=N gives it N.
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import re
import statistics
import sys
import tempfile
import time

import serve

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser tests' server and chromium helpers (streamlit_browser)
RESULTS = ROOT / "bench" / "RESULTS-first-picture.md"
THREADS = {"OMP_NUM_THREADS": os.environ["SERVER_THREADS"]} if os.environ.get("SERVER_THREADS") else {}
FIRST = re.compile("Refining:|beside the gradient at the image")  # a partial picture, or the final one at once


def timings(url: str, names: list[str]) -> list[tuple[str, float, float]]:
    """(photo, seconds to the first picture, seconds to the whole analysis) per photo, one browser session."""
    from playwright.sync_api import expect
    from streamlit_browser import browser_page, open_page, wait_idle

    out = []
    with browser_page("first-picture", timeout_ms=120_000) as page:
        page.goto(url)
        main = page.locator("[data-testid='stMain']")
        expect(main.get_by_text("Quadrature rule")).to_be_visible()
        open_page(page, "Vision")
        expect(main.get_by_text("Top 5 (softmax)")).to_be_visible()
        for name in names:
            wait_idle(page)
            main.locator("[data-testid='stSelectbox']").filter(has_text="Sample photo").click()
            page.keyboard.type(name)  # filters the list: a click on an option far down may miss it while it scrolls
            page.get_by_role("option", name=name, exact=True).click()
            expect(main.get_by_text(f"{name}.JPEG as the network sees it")).to_be_visible()
            wait_idle(page)
            start = time.perf_counter()
            main.get_by_role("button", name="Explain", exact=True).click()
            expect(main.get_by_text("Attributing").first).to_be_visible()
            print(f"scan started after {time.perf_counter() - start:.2f} s", flush=True)
            expect(main.get_by_text(FIRST).first).to_be_visible()
            first = time.perf_counter() - start
            expect(main.get_by_text("7. Ablation check (Figure 1)")).to_be_visible()
            out.append((name, first, time.perf_counter() - start))
            print(f"{name}: first picture {first:.2f} s, whole analysis {out[-1][2]:.1f} s", flush=True)
    return out


def main(argv=None) -> int:
    from streamlit_browser import streamlit_server

    parser = argparse.ArgumentParser(prog="python -m bench.first_picture", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20)
    args = parser.parse_args(argv)
    data = pathlib.Path(os.environ["IG_DATA_DIR"]).resolve()
    weights = data / "models/mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth"
    names = sorted(path.stem for path in (data / "imagenet_samples" / "images").glob("*.JPEG"))[:args.photos]
    with tempfile.TemporaryDirectory() as logs, streamlit_server(pathlib.Path(logs), IG_VISION_ARCH="mobilenet_v2",
                                                                 **THREADS, IG_VISION_WEIGHTS=str(weights)) as url:
        rows = timings(url, names)
    first, whole = [row[1] for row in rows], [row[2] for row in rows]
    server_threads = THREADS.get("OMP_NUM_THREADS") or serve.thread_environment().get("OMP_NUM_THREADS", "?")
    lines = [f"# First picture on the Vision page ({datetime.date.today().isoformat()})", "",
             f"`python -m bench.first_picture --photos {args.photos}`; {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, load average {'%.1f %.1f %.1f' % os.getloadavg()} at the end. MobileNetV2 "
             f"at 224 px on the CPU, {server_threads} torch thread(s) in the server, the page's defaults "
             "(adaptive rule from 16 points to 1%, its first picture from 6 of them, the top label and the "
             "comparison label in one scan); from the click on Explain to the first maps' caption on screen, and to "
             "the page's last section.", "",
             f"- first picture: median {statistics.median(first):.2f} s, max {max(first):.2f} s (goal: median <= 3 s)",
             f"- whole analysis: median {statistics.median(whole):.1f} s, max {max(whole):.1f} s", "",
             "| photo | first picture (s) | whole analysis (s) |", "| --- | --- | --- |",
             *(f"| {name} | {a:.2f} | {b:.1f} |" for name, a, b in rows)]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
