"""bench.load at full size: 8 browser sessions at once on one local server give the one-at-a-time results, and the
server's memory comes back to its warm level. (Its timing figure is a benchmark: `python -m bench.load`.)"""
import asyncio

from streamlit_browser import require_chromium

from bench.load import measure


def test_eight_sessions_at_once_match_one_at_a_time_and_memory_returns(tmp_path, shared_data):
    require_chromium()
    for name in ("sequential", "concurrent"):
        (tmp_path / name).mkdir()
    photos = sorted((shared_data / "imagenet_samples" / "images").glob("*.JPEG"))
    figures = asyncio.run(measure(8, photos, tmp_path, str(shared_data), interleave=False))
    assert len(figures["identical"]) == 8 and all(figures["identical"]), figures
    # what glibc keeps of 8 sessions' freed memory varies from run to run: unchanged code measured 1.16 once and
    # 1.20 to 1.24 on later days on this machine; sessions that were never let go would hold far more
    assert figures["after_mb"] <= 1.3 * figures["warm_mb"], figures
