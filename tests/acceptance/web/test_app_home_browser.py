"""SPEC S1 in a browser: the admin's first load, the bounce through App Bridge, the page.

Chromium loads `/app?embedded=1&shop=..&host=..` as the admin's iframe would. The stand-in App
Bridge does what the real one does on the bounce page - reads `shopify-reload`, appends a
fresh `id_token` and loads that URL - with a token the test made; the stand-in Polaris only
styles the components, for the screenshots in docs/images.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import pytest
from playwright.sync_api import Browser, Page

from tests.support.app_home import StubBilling, StubExchanger, subscription
from tests.support.browser import chromium, offline_context
from tests.support.servers import threaded_server
from tests.support.settings import SECRET, SHOP, make_settings
from timedify.testing import admin_host, session_token

pytestmark = pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")

API_KEY = "test-key"
IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"

APP_BRIDGE_STAND_IN = """
(function () {
  var token = %s;
  window.shopify = { idToken: function () { return Promise.resolve(token); } };
  var reload = new URLSearchParams(window.location.search).get("shopify-reload");
  if (!reload) { return; }
  var target = new URL(reload, window.location.origin);
  if (target.origin !== window.location.origin) { return; }  // only the app's own URLs
  target.searchParams.set("id_token", token);
  window.location.replace(target.toString());
})();
"""

POLARIS_STAND_IN = """
(function () {
  var css = `
    body { margin: 0; background: #f1f1f1; color: #303030;
           font: 14px/1.45 "Inter", "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
    s-page { display: block; max-width: 720px; margin: 0 auto; padding: 20px 16px; }
    s-page::before { content: attr(heading); display: block; font-size: 20px;
                     font-weight: 700; margin: 4px 0 16px; }
    s-section { display: block; background: #fff; border-radius: 12px; padding: 16px;
                margin-bottom: 16px; box-shadow: 0 1px 0 rgba(0,0,0,.07), 0 0 0 1px #e3e3e3; }
    s-section[heading]::before { content: attr(heading); display: block; font-weight: 650;
                                 margin-bottom: 10px; }
    s-banner { display: block; border-radius: 10px; padding: 12px 14px;
               background: #fff1e3; border: 1px solid #ffd6a4; }
    s-banner[tone=critical] { background: #fee9e8; border-color: #fecbcb; }
    s-paragraph { display: block; margin: 6px 0; }
    s-text[type=strong] { font-weight: 650; }
    s-stack { display: flex; gap: 6px; margin-bottom: 6px; }
    s-badge { display: inline-block; border-radius: 8px; padding: 2px 8px; font-size: 12px;
              background: #e3e3e3; }
    s-badge[tone=success] { background: #cdfee1; color: #0c5132; }
    s-badge[tone=info] { background: #e0f0ff; color: #00527c; }
    s-button { display: inline-block; margin-top: 8px; padding: 6px 12px; border-radius: 8px;
               background: #fff; box-shadow: 0 0 0 1px #c9c9c9; font-weight: 600; }
    s-button[variant=primary] { background: #303030; color: #fff; box-shadow: none; }
    s-ordered-list { display: block; padding-left: 22px; margin: 0; }
    s-list-item { display: list-item; list-style: decimal; margin: 4px 0; }
  `;
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);
})();
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    settings = make_settings(sqlite_url, tmp_path, shopify_app_handle="timedify")
    billing = StubBilling(state=subscription(active=False))
    with threaded_server(settings, exchanger=StubExchanger(), billing=billing) as (url, _app):
        yield url


def _open_from_admin(browser: Browser, url: str, locale: str) -> tuple[Page, list[str]]:
    """Load the app URL the admin loads; return the rendered page and every URL requested."""
    token = session_token(SHOP, secret=SECRET, api_key=API_KEY, exp_in=600)
    stand_ins = {
        "https://cdn.shopify.com/shopifycloud/app-bridge.js": (
            "text/javascript",
            APP_BRIDGE_STAND_IN % orjson.dumps(token).decode(),
        ),
        "https://cdn.shopify.com/shopifycloud/polaris.js": ("text/javascript", POLARIS_STAND_IN),
    }
    context = offline_context(browser, stand_ins, viewport={"width": 900, "height": 720})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    query = urlencode({"embedded": "1", "shop": SHOP, "host": admin_host(SHOP), "locale": locale})
    page.goto(f"{url}/app?{query}")
    page.wait_for_selector("#theme-editor")
    return page, requested


def _assert_went_through_the_bounce(page: Page, requested: list[str]) -> None:
    paths = [urlsplit(u).path for u in requested if u.startswith("http://127.0.0.1")]
    assert paths[:3] == ["/app", "/auth/session-token", "/app"]
    final = urlsplit(page.url)
    assert final.path == "/app"
    assert "id_token" in parse_qs(final.query)


def test_the_admin_load_bounces_for_a_token_and_renders_the_page(
    browser: Browser, server: str
) -> None:
    page, requested = _open_from_admin(browser, server, "en")
    _assert_went_through_the_bounce(page, requested)
    assert page.locator("#subscription-state").inner_text().startswith("No active subscription")
    assert page.get_attribute("#theme-editor", "href") == (
        f"https://{SHOP}/admin/themes/current/editor"
        f"?template=index&addAppBlockId={API_KEY}/a-timed-start&target=newAppsSection"
    )
    assert page.get_attribute("#choose-plan", "href") == (
        "https://admin.shopify.com/store/demo-shop/charges/timedify/pricing_plans"
    )
    assert page.locator("#how-it-works s-list-item").count() == 3
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "app-home.png"), full_page=True)
    page.context.close()


def test_the_page_in_german(browser: Browser, server: str) -> None:
    page, requested = _open_from_admin(browser, server, "de")
    _assert_went_through_the_bounce(page, requested)
    assert page.get_attribute("html", "lang") == "de"
    assert page.locator("#subscription-state").inner_text().startswith("Kein aktives Abonnement")
    assert page.locator("#theme-editor").inner_text() == "Theme-Editor öffnen"
    assert page.locator("#choose-plan").inner_text() == "Tarif auswählen"
    page.screenshot(path=str(IMAGES / "app-home-de.png"), full_page=True)
    page.context.close()
