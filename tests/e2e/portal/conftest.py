"""The portal in a real browser: Debian's Chromium driven by Playwright (never `playwright
install`: /work/shared/testinfra.md section 1), against a real `dockyard serve` process.

`shoot(page, name)` saves a full-page screenshot beside the tests (`screenshots/`, kept in the
repository and looked at) at the page's current width; `both_widths(page, name)` takes one at
1280×800 and one at phone width (390×844).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, missing
from tests.server import DockyardServer

CHROMIUM = os.environ.get("DOCKYARD_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


# Module scope, not session: Playwright's sync API runs an event loop in this thread while it is
# alive, and the anyio tests of the in-process tier need the thread free of one.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (pip)")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        missing("Chromium (apt install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """One server per module, on SQLite: the portal's behaviour does not depend on the backend
    (the API tests run both); PostgreSQL is covered by the in-process and API tiers."""
    srv = DockyardServer(tmp_path_factory.mktemp("portal") / "data", None, ADMIN_PASSWORD)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def context(browser: object) -> Iterator[object]:
    ctx = browser.new_context(viewport=DESKTOP)  # type: ignore[attr-defined]
    yield ctx
    ctx.close()


def sign_in(page: object, server: DockyardServer, user: str, password: str) -> None:
    page.goto(server.url + "/login")  # type: ignore[attr-defined]
    page.get_by_label("Username").fill(user)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.wait_for_url("**/repositories")  # type: ignore[attr-defined]


def shoot(page: object, name: str, full_page: bool = True) -> Path:
    """A screenshot of the whole page, or (`full_page=False`, for an open dialog, whose backdrop
    covers the window, not the whole length of the page) of what the window shows."""
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
    return path


def both_widths(page: object, name: str, full_page: bool = True) -> None:
    page.set_viewport_size(DESKTOP)  # type: ignore[attr-defined]
    shoot(page, f"{name}-desktop", full_page)
    page.set_viewport_size(PHONE)  # type: ignore[attr-defined]
    shoot(page, f"{name}-phone", full_page)
    page.set_viewport_size(DESKTOP)  # type: ignore[attr-defined]
