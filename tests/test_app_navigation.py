"""The sidebar navigation: the pages in sections; a fresh server whose first request is a deep link gets the app's own
navigation, titles and wide layout."""
import pytest
from streamlit_browser import browser_page, full_screenshot, require_chromium, streamlit_server, wait_idle

SECTIONS = {
    "Start": ["Home", "Trust: can I trust this map?"],
    "Vision": ["Vision", "Vision evaluation", "Vision: a run's misclassifications"],
    "Molecules": ["Molecules", "Molecules: browse actives", "Molecules: W1N2 vs W2N2", "Molecules: a run's actives"],
    "Language": ["Language", "Language: a corpus run"],
    "Runs": ["Compare two runs"],
    "Tables": ["Tables"],
}
APP_PAGES = [title for titles in SECTIONS.values() for title in titles]
URL_PATHS = ["", "trust", "vision", "vision_evaluation", "vision_runs", "molecules", "molecules_browse",
             "molecules_debug", "molecules_runs", "language", "language_runs", "runs_compare", "tabular"]  # linked


def sidebar_sections(page) -> dict[str, list[str]]:
    """{section header: the titles of its links} as the sidebar shows them."""
    sections = {}
    for header in page.locator("[data-testid='stNavSectionHeader']").all():
        title = header.locator("[data-testid='stMarkdownContainer']").inner_text().strip()
        links = header.locator("xpath=..").locator("[data-testid='stSidebarNavLink']")
        sections[title] = [text.strip() for text in links.all_inner_texts()]
    return sections


def test_the_sidebar_groups_the_pages_in_sections_and_keeps_their_urls(tmp_path, shared_data):
    require_chromium()
    from playwright.sync_api import expect

    with streamlit_server(tmp_path, IG_DATA_DIR=str(shared_data)) as url, browser_page("navigation") as page:
        page.goto(url)
        wait_idle(page)
        expect(page.locator("[data-testid='stNavSectionHeader']").first).to_be_visible()
        assert sidebar_sections(page) == SECTIONS
        links = page.locator("[data-testid='stSidebarNav'] a")
        assert [link.get_attribute("href").removeprefix(url + "/") for link in links.all()] == URL_PATHS
        full_screenshot(page, "navigation.png")


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
            assert sidebar_sections(page) == SECTIONS
            assert page.title() != "app"
            container = page.locator("[data-testid='stMainBlockContainer']")
            assert container.bounding_box()["width"] > 1000, "the entry file's wide layout is not applied"
            expect(page.locator("[data-testid='stException']")).to_have_count(0)
