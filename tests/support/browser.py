"""Playwright driving Debian's chromium headless, with nothing reaching the network.

Every request that does not go to 127.0.0.1 is answered by a local stand-in (`stand_ins`, URL
prefix -> (content type, body)) or refused, so a page that loads Shopify's CDN scripts works
offline and a forgotten external request fails the test instead of hanging it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Background networking of chromium would try Google's hosts at every start (refused here).
_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium for the block."""
    args = [*_ARGS, "--no-sandbox"] if os.geteuid() == 0 else list(_ARGS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


def offline_context(
    browser: Browser, stand_ins: Mapping[str, tuple[str, str]] | None = None, **options: object
) -> BrowserContext:
    """A browser context whose requests stay on loopback; others get a stand-in or are aborted."""
    context = browser.new_context(**options)  # type: ignore[arg-type]
    known = dict(stand_ins or {})

    def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "http://localhost")):
            route.continue_()
            return
        for prefix, (content_type, body) in known.items():
            if url.startswith(prefix):
                route.fulfill(status=200, content_type=content_type, body=body)
                return
        route.abort()

    context.route("**/*", route)
    return context
