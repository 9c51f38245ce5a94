"""views.scaffold: what every page shares. Unexpected errors reach the browser as a clear message without the
exception's text (it can name server paths) and the traceback goes to the server log."""
import logging
import tomllib
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def failing_page():
    from views.scaffold import run_page

    def main():
        raise OSError("[Errno 13] Permission denied: '/srv/secret/weights.pth'")

    run_page(main)


def test_an_unexpected_error_shows_a_message_without_server_paths_and_logs_the_trace(caplog):
    at = AppTest.from_function(failing_page, default_timeout=30)
    with caplog.at_level(logging.ERROR, logger="ig_dashboard"):
        at.run()
    assert not at.exception
    (error,) = at.error
    assert "Something went wrong (OSError)" in error.value and "/srv/secret" not in error.value
    assert any("/srv/secret/weights.pth" in record.exc_text for record in caplog.records if record.exc_text)


def test_streamlit_shows_no_error_details_and_bounds_uploads():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert 0 < config["server"]["maxUploadSize"] <= 200
