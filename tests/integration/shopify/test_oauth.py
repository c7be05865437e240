"""S3/S4: the token endpoint client's requests and how it maps Shopify's answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.fake_shopify import FakeShopify, State, running
from tests.support.fake_shopify.oauth import session_token
from tests.support.pgcluster import free_port
from tests.support.settings import SECRET, SHOP, make_settings
from timedify.models import utcnow
from timedify.shopify.contracts import InvalidSubjectToken, ShopifyAuthError, ShopifyUnavailable
from timedify.shopify.oauth import InvalidGrant, OAuthClient


@pytest.fixture
def fake() -> Iterator[FakeShopify]:
    with running(State(client_id="test-key", client_secret=SECRET)) as server:
        yield server


def _client(tmp_path: Path, origin: str) -> OAuthClient:
    settings = make_settings("sqlite:///unused.db", tmp_path, shopify_api_origin=origin)
    return OAuthClient(settings, backoff_seconds=0.01)


def test_exchange_gives_an_expiring_pair_with_aware_expiries(
    fake: FakeShopify, tmp_path: Path
) -> None:
    before = utcnow()
    grant = _client(tmp_path, fake.origin).token_exchange(SHOP, session_token(fake.state, SHOP))
    assert fake.state.access_tokens[grant.access_token].shop == SHOP
    assert grant.refresh_token in fake.state.refresh_tokens
    assert grant.expires_at is not None
    assert grant.expires_at.tzinfo is not None
    # One hour, counted from when the request was sent (never later than Shopify's own clock).
    assert before + timedelta(minutes=59) < grant.expires_at <= utcnow() + timedelta(hours=1)
    assert grant.refresh_token_expires_at is not None
    assert grant.refresh_token_expires_at > grant.expires_at
    assert grant.access_token not in repr(grant)


def test_refresh_rotates_and_a_used_token_is_invalid_grant(
    fake: FakeShopify, tmp_path: Path
) -> None:
    client = _client(tmp_path, fake.origin)
    first = client.token_exchange(SHOP, session_token(fake.state, SHOP))
    assert first.refresh_token is not None
    second = client.refresh(SHOP, first.refresh_token)
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.refresh_token is not None
    client.refresh(SHOP, second.refresh_token)
    with pytest.raises(InvalidGrant):
        client.refresh(SHOP, first.refresh_token)
    with pytest.raises(InvalidGrant):
        client.refresh(SHOP, "shprt_unknown")


def test_refusals_are_mapped_and_never_echo_a_token(fake: FakeShopify, tmp_path: Path) -> None:
    client = _client(tmp_path, fake.origin)
    with pytest.raises(InvalidSubjectToken) as bad_token:
        client.token_exchange(SHOP, "not-a-jwt")
    assert "not-a-jwt" not in str(bad_token.value)
    with pytest.raises(ShopifyAuthError) as other:
        client.migrate(SHOP, "shpat_neverissued")
    assert "shpat_" not in str(other.value)
    fake.state.client_secret = "another-secret-0123456789abcdefgh"
    with pytest.raises(ShopifyAuthError) as refused:
        client.token_exchange(SHOP, session_token(fake.state, SHOP))
    assert "HTTP 401 invalid_client" in str(refused.value)
    assert not isinstance(refused.value, InvalidSubjectToken)


def test_5xx_is_retried_then_unavailable(fake: FakeShopify, tmp_path: Path) -> None:
    client = _client(tmp_path, fake.origin)
    fake.state.fail_next = 2
    grant = client.token_exchange(SHOP, session_token(fake.state, SHOP))
    assert grant.access_token in fake.state.access_tokens
    fake.state.fail_next = 3
    with pytest.raises(ShopifyUnavailable) as info:
        client.token_exchange(SHOP, session_token(fake.state, SHOP))
    assert "HTTP 503" in str(info.value)


def test_an_unreachable_shopify_is_unavailable(tmp_path: Path) -> None:
    client = _client(tmp_path, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ShopifyUnavailable) as info:
        client.refresh(SHOP, "shprt_x")
    assert "ConnectError" in str(info.value)


def test_only_myshopify_domains_are_called(tmp_path: Path) -> None:
    client = _client(tmp_path, "https://{shop}")
    assert client.url(SHOP) == f"https://{SHOP}/admin/oauth/access_token"
    with pytest.raises(ShopifyAuthError):
        client.url("evil.example.com/")
