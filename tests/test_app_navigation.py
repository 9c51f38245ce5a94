"""A fresh server whose first request is a deep link gets the app's own navigation, titles and wide layout."""
import pytest
from streamlit_browser import browser_page, require_chromium, streamlit_server, wait_idle

APP_PAGES = ["Home", "Vision", "Vision evaluation", "Vision: a run's misclassifications", "Molecules",
             "Molecules: browse actives", "Molecules: W1N2 vs W2N2", "Molecules: a run's actives", "Language",
             "Language: a corpus run", "Compare two runs", "Tables"]


@pytest.mark.parametrize("first_path", ["molecules", "language"])
def test_a_deep_link_as_the_first_request_gets_the_apps_navigation(tmp_path, shared_data, first_path):
    require_chromium()
    from playwright.sync_api import expect

    with (streamlit_server(tmp_path, IG_DATA_DIR=str(shared_data)) as url,
          browser_page(f"deep-link-{first_path}") as page):
        for path in (first_path, "", first_path):  # the first request, then later ones on the same server
            page.goto(f"{url}/{path}")
            wait_idle(page)
            links = page.locator("[data-testid='stSidebarNav'] a")
            expect(links.first).to_be_visible()
            assert [text.strip() for text in links.all_inner_texts()] == APP_PAGES
            assert page.title() != "app"
            container = page.locator("[data-testid='stMainBlockContainer']")
            assert container.bounding_box()["width"] > 1000, "the entry file's wide layout is not applied"
            expect(page.locator("[data-testid='stException']")).to_have_count(0)
