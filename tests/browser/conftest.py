"""A real headless Chromium (Debian's `chromium`, driven by Playwright) against the real services
(the e2e stack: every service its own process on the real broker and database) and the sandbox
emulators. Playwright never downloads a browser here: it launches /usr/bin/chromium.

Every page a test opens is watched: a request to any host but the gateway, a console error or a
Content-Security-Policy violation fails the test, and `Browser.check(page, name)` runs axe-core
(vendored) on the page and saves a screenshot to .run/screenshots/NAME.png."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response, Route, sync_playwright

from tests.connectors.conftest import sandbox  # noqa: F401 - the session fixture
from tests.e2e.conftest import Stack, stack  # noqa: F401 - the session fixture
from tests.infra import ROOT

CHROMIUM = os.environ.get("SALESWIRE_CHROMIUM", "/usr/bin/chromium")
AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
SCREENSHOTS = ROOT / ".run" / "screenshots"
# WCAG 2.1 A and AA rules. Any violation fails, whatever its impact (minor ones included).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass
class Watch:
    """What one browser context did that a test may assert on."""

    origin: str
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.foreign, f"requests to other hosts: {self.foreign}"
        assert not self.errors, f"console errors: {self.errors}"


@dataclass
class Session:
    context: BrowserContext
    page: Page
    watch: Watch


class Browser:
    def __init__(self, browser: PlaywrightBrowser, gateway: Stack) -> None:
        self.browser = browser
        self.stack = gateway
        self.sessions: list[Session] = []

    def open(self, locale: str = "en-US") -> Session:
        context = self.browser.new_context(
            locale=locale, viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        watch = Watch(self.stack.gateway_url)

        def guard(route: Route, request: Request) -> None:
            watch.requests.append(request.url)
            if request.url.startswith(watch.origin + "/") or request.url.startswith(("blob:", "data:")):
                route.continue_()
            else:
                watch.foreign.append(request.url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()

        def console(message: ConsoleMessage) -> None:
            # An API's 4xx answer is logged by Chromium as a failed resource: those are expected
            # (a foreign report is a 404); a failed asset of the page is caught below instead.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                watch.errors.append(message.text)

        def response(answer: Response) -> None:
            if answer.url.startswith(watch.origin + "/app/static/") and answer.status >= 400:
                watch.errors.append(f"{answer.status} for {answer.url}")

        page.on("console", console)
        page.on("response", response)
        page.on("pageerror", lambda exc: watch.errors.append(f"page error: {exc}"))
        session = Session(context, page, watch)
        self.sessions.append(session)
        return session

    def check(self, page: Page, name: str) -> None:
        """axe-core on the page as it is now (fails on violations), then a full-page screenshot."""
        # Injected through the DevTools protocol, which the page's CSP does not govern (the page
        # itself would refuse an inline script, as it should).
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(AXE)
        result: dict[str, Any] = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
            AXE_TAGS,
        )
        violations = [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [n["target"] for n in v["nodes"][:5]],
            }
            for v in result["violations"]
        ]
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        assert not violations, f"axe-core on {name}: {violations}"


@pytest.fixture(scope="session")
def browser(stack: Stack) -> Iterator[Browser]:  # noqa: F811
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        raise RuntimeError("Debian's chromium is not installed: run scripts/ensure-chromium.sh")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # Root in a container: Chromium's own sandbox needs user namespaces it may not get.
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--font-render-hinting=none"],
        )
        holder = Browser(chromium, stack)
        try:
            yield holder
        finally:
            for s in holder.sessions:
                s.context.close()
            chromium.close()
