"""Fixtures of the browser tests: Debian's chromium driven by Playwright (no browser download),
and the folder the screenshots go to (``output/console-screenshots``, not committed)."""
import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Flags for headless chromium as root on a closed network (no sandbox for root, no background
#: connections, no GPU); autoplay so a muted player starts without a user gesture.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    executable = os.environ.get("VODPIPE_CHROMIUM") or shutil.which("chromium")
    assert executable, "chromium is missing: `make test` installs Debian's chromium package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    # chromium's own media log (the DevTools "Media" panel): what a failed playback check reports
    media_log: list[str] = []
    session = context.new_cdp_session(page)
    for kind in ("playerMessagesLogged", "playerErrorsRaised", "playerEventsAdded"):
        session.on(f"Media.{kind}", lambda event, kind=kind: media_log.extend(
            f"{kind}: {json.dumps(item)[:300]}" for item in event.get("messages") or event.get("errors")
            or event.get("events") or []))
    session.send("Media.enable")
    page.media_log = media_log
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = ROOT / "output" / "console-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
