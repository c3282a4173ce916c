"""Headless Chromium for the UI tests: Debian's `chromium` driven by Playwright (its own
browsers are never downloaded), started with the flags a closed network needs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"

# Without the background-networking flags Chromium keeps dialling Google's services, which this
# machine's network refuses; --no-sandbox because CI runs as root.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium_page(base_url: str, tmp_path: Path) -> Iterator[Page]:
    """A page of a fresh Chromium profile at a desktop size, with Dagster's first-visit
    newsletter dialog already dismissed."""
    assert CHROMIUM, "no chromium executable (Debian package chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
            base_url=base_url,
        )
        browser.add_init_script("window.localStorage.setItem('communityNux', '1')")
        browser.set_default_timeout(60_000)
        try:
            yield browser.pages[0] if browser.pages else browser.new_page()
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    """Save the page as ``docs/img/<name>.png`` (the README shows these)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, animations="disabled")  # dialogs fade in
    return path


def expand_all_groups(page: Page) -> None:
    """Expand every group of the asset graph through the canvas' context menu (right-click on
    an empty spot above the graph, retried while the graph is still laying itself out)."""
    item = page.get_by_role("menuitem", name="Expand all groups")
    for _ in range(20):
        page.mouse.click(700, 140, button="right")
        try:
            item.click(timeout=2_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError("the asset graph's context menu did not offer 'Expand all groups'")
