"""SPEC S1/S2 over real HTTP: the embedded page, its bounce, the API guard, every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.support.app_home import (
    Page,
    StubBilling,
    StubExchanger,
    log_lines,
    logging_to,
    subscription,
    wait_for_line,
)
from tests.support.servers import threaded_server
from tests.support.settings import PREVIOUS_SECRET, SECRET, SHOP, make_settings
from timedify.shopify.contracts import (
    InvalidSubjectToken,
    NeedsReauthentication,
    ShopifyAuthError,
    ShopifyUnavailable,
)
from timedify.testing import admin_host, session_token

pytestmark = pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")

API_KEY = "test-key"
HOST = admin_host(SHOP)
NOBODY = "frame-ancestors 'none';"
SHOP_FRAMES = f"frame-ancestors https://{SHOP} https://admin.shopify.com;"
APP_BRIDGE = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
POLARIS = "https://cdn.shopify.com/shopifycloud/polaris.js"


@dataclass
class Home:
    url: str
    exchanger: StubExchanger
    billing: StubBilling
    log: Path

    def get(self, path: str, params: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        query = f"?{urlencode(params)}" if params else ""
        return httpx.get(self.url + path + query, follow_redirects=False, timeout=10, **kw)

    def app(self, **params: str) -> httpx.Response:
        return self.get("/app", {"shop": SHOP, "host": HOST, **params})


@pytest.fixture
def home(db_url: str, tmp_path: Path) -> Iterator[Home]:
    settings = make_settings(
        db_url,
        tmp_path,
        shopify_api_secret_previous=PREVIOUS_SECRET,
        shopify_app_handle="timedify-test",
    )
    exchanger, billing = StubExchanger(), StubBilling()
    with (
        logging_to(tmp_path / "service.log") as log,
        threaded_server(settings, exchanger=exchanger, billing=billing) as (url, _app),
    ):
        yield Home(url, exchanger, billing, log)


def _token(shop: str = SHOP, **options: Any) -> str:
    return session_token(shop, secret=options.pop("secret", SECRET), api_key=API_KEY, **options)


def _assert_html(response: httpx.Response, csp: str) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == csp
    assert response.headers["cache-control"] == "no-store"


# --- S1: redirects ---------------------------------------------------------------------------


def test_root_redirects_to_app_keeping_the_query(home: Home) -> None:
    query = urlencode({"shop": SHOP, "host": HOST, "embedded": "1"})
    response = httpx.get(f"{home.url}/?{query}", timeout=10)
    assert response.status_code == 302
    assert response.headers["location"] == f"/app?{query}"
    assert response.headers["cache-control"] == "no-store"
    assert home.get("/").headers["location"] == "/app"


def test_embedded_request_without_token_goes_to_the_bounce_page(home: Home) -> None:
    response = home.app(embedded="1", locale="de")
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    assert location.path == "/auth/session-token"
    query = parse_qs(location.query)
    assert query["shop"] == [SHOP]
    reload = urlsplit(query["shopify-reload"][0])
    assert (reload.scheme, reload.netloc, reload.path) == ("", "", "/app")
    assert parse_qs(reload.query) == {
        "shop": [SHOP],
        "host": [HOST],
        "embedded": ["1"],
        "locale": ["de"],
    }
    assert home.exchanger.calls == []


def test_a_request_outside_the_admin_is_sent_to_the_app_in_the_admin(home: Home) -> None:
    response = home.app()
    assert response.status_code == 302
    assert response.headers["location"] == (
        f"https://admin.shopify.com/store/demo-shop/apps/{API_KEY}"
    )


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"host": HOST, "embedded": "1"}, "invalid_shop"),
        ({"shop": "evil.example.com", "host": HOST}, "invalid_shop"),
        ({"shop": f"{SHOP}.evil.com", "host": HOST}, "invalid_shop"),
        ({"shop": SHOP, "embedded": "1"}, "invalid_host"),
        ({"shop": SHOP, "host": "ZXZpbC5leGFtcGxlLmNvbQ", "embedded": "1"}, "invalid_host"),
    ],
)
def test_a_request_without_a_valid_shop_and_host_is_refused(
    home: Home, params: dict[str, str], reason: str
) -> None:
    response = home.get("/app", {**params, "id_token": _token()})
    assert response.status_code == 400
    _assert_html(response, NOBODY)
    assert Page(response.text).by_id("error")["data-reason"] == reason
    wait_for_line(home.log, "app_home_rejected", reason=reason, status=400)
    assert home.exchanger.calls == []


# --- S1 + S2: the rendered page --------------------------------------------------------------


def test_a_verified_request_renders_the_page(home: Home) -> None:
    token = _token()
    response = home.app(embedded="1", id_token=token)
    assert response.status_code == 200
    _assert_html(response, SHOP_FRAMES)
    page = Page(response.text)
    head = page.head()
    assert head[0][0] == "meta"  # charset
    assert head[1] == ("meta", {"name": "shopify-api-key", "content": API_KEY})
    assert head[2] == ("script", {"src": APP_BRIDGE})  # the first script, not deferred
    assert page.scripts()[:2] == [APP_BRIDGE, POLARIS]
    assert page.by_id("subscription-state")["data-state"] == "active"
    assert "Your plan Pro is active." in response.text
    assert "2031-03-09" in response.text
    assert page.by_id("theme-editor")["href"] == (
        f"https://{SHOP}/admin/themes/current/editor"
        f"?template=index&addAppBlockId={API_KEY}/a-timed-start&target=newAppsSection"
    )
    assert "choose-plan" not in response.text
    assert home.exchanger.calls == [(SHOP, token)]
    assert home.billing.calls == [(SHOP, 300)]
    wait_for_line(home.log, "app_home_served", shop=SHOP, subscription="active")


def test_without_an_active_subscription_the_page_leads_to_the_plan_page(home: Home) -> None:
    home.billing.state = subscription(active=False)
    response = home.app(embedded="1", id_token=_token())
    page = Page(response.text)
    assert page.by_id("subscription-state")["data-state"] == "inactive"
    assert "No active subscription" in response.text
    assert page.by_id("choose-plan")["href"] == (
        "https://admin.shopify.com/store/demo-shop/charges/timedify-test/pricing_plans"
    )
    assert page.by_id("choose-plan")["target"] == "_top"


def test_a_test_charge_is_marked(home: Home) -> None:
    home.billing.state = subscription(test=True)
    assert "Test charge" in home.app(id_token=_token()).text


def test_the_page_still_renders_when_billing_cannot_be_read(home: Home) -> None:
    home.billing.error = ShopifyUnavailable("429 after retries")
    response = home.app(embedded="1", id_token=_token())
    assert response.status_code == 200
    assert Page(response.text).by_id("subscription-state")["data-state"] == "unknown"
    assert "theme-editor" in response.text
    wait_for_line(home.log, "app_home_billing_unavailable", error_class="shopify_unavailable")


def test_german_from_the_locale_parameter(home: Home) -> None:
    home.billing.state = subscription(active=False)
    response = home.app(embedded="1", id_token=_token(), locale="de-DE")
    assert '<html lang="de">' in response.text
    assert "Kein aktives Abonnement" in response.text
    assert "Theme-Editor öffnen" in response.text
    assert "So funktioniert es" in response.text


@pytest.mark.parametrize("locale", ["fr", "", "xx-YY"])
def test_other_locales_fall_back_to_english(home: Home, locale: str) -> None:
    response = home.app(id_token=_token(), locale=locale)
    assert '<html lang="en">' in response.text
    assert "Open the theme editor" in response.text


def test_a_token_signed_with_the_previous_secret_is_accepted(home: Home) -> None:
    assert home.app(id_token=_token(secret=PREVIOUS_SECRET)).status_code == 200


# --- S2: refused tokens -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"secret": "not-the-secret"}, "bad_signature"),
        ({"audience": "another-app"}, "wrong_audience"),
        ({"dest": "https://other.myshopify.com"}, "issuer_destination_mismatch"),
        ({"iss": "https://evil.example.com/admin"}, "invalid_issuer"),
        ({"omit": ("sub",)}, "missing_claim"),
    ],
)
def test_an_invalid_token_is_refused_with_401(
    home: Home, options: dict[str, Any], reason: str
) -> None:
    token = _token(**options)
    response = home.app(embedded="1", id_token=token)
    assert response.status_code == 401
    _assert_html(response, NOBODY)
    assert Page(response.text).by_id("error")["data-reason"] == reason
    assert token not in response.text
    wait_for_line(home.log, "app_home_rejected", reason=reason, status=401)
    assert home.exchanger.calls == []


def test_an_expired_token_inside_the_admin_fetches_a_fresh_one(home: Home) -> None:
    response = home.app(embedded="1", id_token=_token(exp_in=-120))
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == "/auth/session-token"
    assert "id_token" not in parse_qs(urlsplit(parse_qs(location.query)["shopify-reload"][0]).query)
    wait_for_line(home.log, "app_home_bounced", reason="expired")


def test_a_token_of_another_shop_is_refused(home: Home) -> None:
    response = home.app(embedded="1", id_token=_token("other-shop.myshopify.com"))
    assert response.status_code == 403
    _assert_html(response, NOBODY)
    wait_for_line(home.log, "app_home_rejected", reason="shop_mismatch", status=403)
    assert home.exchanger.calls == []


# --- S3 outcomes as the page shows them ------------------------------------------------------


def test_a_refused_subject_token_goes_to_the_bounce_page(home: Home) -> None:
    home.exchanger.error = InvalidSubjectToken("invalid_subject_token")
    response = home.app(embedded="1", id_token=_token())
    assert response.status_code == 302
    assert response.headers["location"].startswith("/auth/session-token?")
    assert home.billing.calls == []


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("exchanger", ShopifyAuthError("invalid_client")),
        ("billing", NeedsReauthentication("invalid_grant")),
    ],
)
def test_other_auth_failures_show_a_clear_error_page(
    home: Home, where: str, error: Exception
) -> None:
    getattr(home, where).error = error
    response = home.app(embedded="1", id_token=_token(), locale="de")
    assert response.status_code == 502
    _assert_html(response, SHOP_FRAMES)  # the shop is verified: its admin may show the page
    assert "Shopify hat Timedify für deinen Shop nicht autorisiert" in response.text
    assert "invalid_client" not in response.text
    line = wait_for_line(home.log, "app_home_failed", shop=SHOP, status=502)
    assert line["error_class"] == "shopify_auth"


def test_shopify_unavailable_during_the_exchange_asks_to_reload(home: Home) -> None:
    home.exchanger.error = ShopifyUnavailable("503 after retries")
    response = home.app(embedded="1", id_token=_token())
    assert response.status_code == 503
    assert "Reload the page in a moment" in response.text
    wait_for_line(home.log, "app_home_failed", error_class="shopify_unavailable")


# --- the bounce page ----------------------------------------------------------------------------


def test_the_bounce_page_holds_only_app_bridge(home: Home) -> None:
    reload = f"/app?{urlencode({'shop': SHOP, 'host': HOST, 'embedded': '1'})}"
    response = home.get("/auth/session-token", {"shop": SHOP, "shopify-reload": reload})
    assert response.status_code == 200
    # Framed by the admin it is loaded in; it shows nothing, so no verified shop is needed.
    _assert_html(response, SHOP_FRAMES)
    page = Page(response.text)
    assert page.scripts() == [APP_BRIDGE]
    assert page.head()[1] == ("meta", {"name": "shopify-api-key", "content": API_KEY})
    assert [tag for tag, _a, in_head in page.elements if not in_head] == ["html", "body"]
    assert "shopify-reload" not in response.text  # App Bridge reads it from the URL


@pytest.mark.parametrize("params", [{}, {"shop": "evil.example.com"}])
def test_the_bounce_page_without_a_valid_shop_may_not_be_framed(
    home: Home, params: dict[str, str]
) -> None:
    response = home.get("/auth/session-token", {**params, "shopify-reload": "/app"})
    _assert_html(response, NOBODY)


# --- S2: the API ---------------------------------------------------------------------------------


def test_api_ping_answers_the_shop_of_the_bearer(home: Home) -> None:
    for secret in (SECRET, PREVIOUS_SECRET):
        headers = {"Authorization": f"Bearer {_token(secret=secret)}"}
        response = home.get("/api/ping", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"shop": SHOP}


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "missing_token"),
        ("Bearer", "missing_token"),
        ("Basic dXNlcjpwYXNz", "missing_token"),
        ("Bearer not-a-jwt", "malformed"),
        ("Bearer {expired}", "expired"),
        ("Bearer {forged}", "bad_signature"),
        ("Bearer {other_app}", "wrong_audience"),
    ],
)
def test_api_without_a_valid_token_gets_the_retry_401(
    home: Home, authorization: str | None, reason: str
) -> None:
    tokens = {
        "expired": _token(exp_in=-60),
        "forged": _token(secret="forged-secret-of-someone-else-0000"),
        "other_app": _token(audience="other"),
    }
    headers = {} if authorization is None else {"Authorization": authorization.format(**tokens)}
    response = home.get("/api/ping", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_session_token"}
    assert response.headers["x-shopify-retry-invalid-session-request"] == "1"
    assert response.headers["cache-control"] == "no-store"
    wait_for_line(home.log, "api_rejected", reason=reason, status=401)


# --- the whole surface ---------------------------------------------------------------------------


def test_session_tokens_never_reach_the_logs(home: Home) -> None:
    tokens = [
        _token(),
        _token(secret="forged-secret-of-someone-else-0000"),
        _token("other-shop.myshopify.com"),
    ]
    for token in tokens:
        home.app(embedded="1", id_token=token)
        home.get("/api/ping", headers={"Authorization": f"Bearer {token}"})
    wait_for_line(home.log, "app_home_rejected", reason="shop_mismatch")
    wait_for_line(home.log, "api_rejected", reason="bad_signature")
    text = home.log.read_text()
    assert log_lines(home.log)
    for token in tokens:
        assert token not in text
        assert token.split(".")[2] not in text


def test_only_get_is_served(home: Home) -> None:
    response = httpx.post(f"{home.url}/app?shop={SHOP}&host={HOST}", timeout=10)
    assert response.status_code == 405


def test_without_exchanger_and_billing_the_page_says_it_is_not_wired(
    db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(db_url, tmp_path)
    with (
        logging_to(tmp_path / "service.log") as log,
        threaded_server(settings) as (url, _app),
    ):
        query = urlencode({"shop": SHOP, "host": HOST, "id_token": _token()})
        response = httpx.get(f"{url}/app?{query}", timeout=10)
        assert response.status_code == 503
        wait_for_line(log, "app_home_failed", error_type="ShopifyUnavailable")
