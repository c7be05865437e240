"""`POST /admin/oauth/access_token`: token exchange, refresh and the migration exchange.

As Shopify documents it: JSON in, JSON out; the client credentials are checked first
(`invalid_client`), a session token must be HS256-signed with the app secret with `aud` = the
client id (`invalid_subject_token` otherwise), a refresh token is rotated on use (see
`RefreshGrant` for the one replay a lost answer gets), and migrating a non-expiring token
answers the same pair when repeated. `State.fail_next` / `State.drop_next` inject faults.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any

import jwt
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from tests.support.fake_shopify.state import State

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"

Answer = tuple[int, dict[str, Any]]


def routes(state: State) -> list[BaseRoute]:
    """The OAuth routes of the fake Shopify."""
    return [Route("/admin/oauth/access_token", TokenEndpoint(state), methods=["POST"])]


class TokenEndpoint:
    """A raw ASGI app, so that it can drop a connection halfway through an answer."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        with self.state.lock:
            if self.state.fail_next > 0:
                self.state.fail_next -= 1
                status, doc = 503, {"errors": "unavailable"}
            else:
                status, doc = answer(self.state, body)
            drop = self.state.drop_next > 0
            self.state.drop_next -= 1 if drop else 0
        if self.state.answer_delay:
            await asyncio.sleep(self.state.answer_delay)
        data = json.dumps(doc).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if drop:
            # Processed, then the connection dies before the body: the client sees an error.
            await send({"type": "http.response.body", "body": data[:1], "more_body": True})
            raise ConnectionAbortedError("fake Shopify dropped the connection")
        await send({"type": "http.response.body", "body": data})


def answer(state: State, body: bytes) -> Answer:
    """The status and JSON document for one request (with `state.lock` held)."""
    try:
        request = json.loads(body)
        if not isinstance(request, dict):
            raise ValueError
    except ValueError:
        return _refused(state, 400, "invalid_request")
    if not _client_ok(state, request):
        return _refused(state, 401, "invalid_client")
    grant = request.get("grant_type")
    if grant == "refresh_token":
        return _refresh(state, str(request.get("refresh_token") or ""))
    if grant != TOKEN_EXCHANGE or request.get("requested_token_type") != OFFLINE_TOKEN:
        return _refused(state, 400, "unsupported_grant_type")
    subject_type = request.get("subject_token_type")
    subject = str(request.get("subject_token") or "")
    expiring = str(request.get("expiring", "0")) == "1"
    if subject_type == ID_TOKEN:
        return _exchange(state, subject, expiring)
    if subject_type == OFFLINE_TOKEN and expiring:
        return _migrate(state, subject)
    return _refused(state, 400, "invalid_request")


def _client_ok(state: State, request: dict[str, Any]) -> bool:
    client_id = str(request.get("client_id") or "")
    secret = str(request.get("client_secret") or "")
    return hmac.compare_digest(client_id, state.client_id) and hmac.compare_digest(
        secret, state.client_secret
    )


def _exchange(state: State, id_token: str, expiring: bool) -> Answer:
    try:
        claims = jwt.decode(
            id_token,
            state.client_secret,
            algorithms=["HS256"],
            audience=state.client_id,
            leeway=10,
            options={"require": ["exp", "dest", "aud"]},
        )
    except jwt.PyJWTError:
        return _refused(state, 400, "invalid_subject_token")
    shop = str(claims["dest"]).removeprefix("https://")
    state.token_requests.append("token_exchange")
    if not expiring:
        return 200, {"access_token": state.issue_access(shop, expiring=False), "scope": state.scope}
    return 200, _pair(state, state.issue_access(shop), state.issue_refresh(shop))


def _refresh(state: State, token: str) -> Answer:
    grant = state.refresh_tokens.get(token)
    if grant is None or grant.expires_at <= time.time():
        return _refused(state, 400, "invalid_grant")
    state.token_requests.append("refresh")
    if grant.answered is not None:
        if grant.replays_left <= 0:
            return _refused(state, 400, "invalid_grant")
        grant.replays_left -= 1
        return 200, _pair(state, *grant.answered)
    # Using the new refresh token ends the replay window of the one it replaced.
    for old in [
        t for t, g in state.refresh_tokens.items() if g.answered and g.answered[1] == token
    ]:
        del state.refresh_tokens[old]
    grant.answered = (state.issue_access(grant.shop), state.issue_refresh(grant.shop))
    return 200, _pair(state, *grant.answered)


def _migrate(state: State, old: str) -> Answer:
    if old in state.migrated:
        state.token_requests.append("migration")
        access, refresh = state.migrated[old]
        return 200, _pair(state, access, refresh)
    grant = state.access_tokens.get(old)
    if grant is None or grant.expires_at is not None:
        return _refused(state, 400, "invalid_subject_token")
    state.token_requests.append("migration")
    del state.access_tokens[old]  # the old token stops working at the Admin API
    pair = (state.issue_access(grant.shop), state.issue_refresh(grant.shop))
    state.migrated[old] = pair
    return 200, _pair(state, *pair)


def _pair(state: State, access: str, refresh: str) -> dict[str, Any]:
    expires = state.access_tokens[access].expires_at or time.time()
    return {
        "access_token": access,
        "scope": state.access_tokens[access].scope,
        "expires_in": max(0, int(expires - time.time())),
        "refresh_token": refresh,
        "refresh_token_expires_in": max(
            0, int(state.refresh_tokens[refresh].expires_at - time.time())
        ),
    }


def _refused(state: State, status: int, error: str) -> Answer:
    state.token_requests.append("refused")
    return status, {"error": error, "error_description": error.replace("_", " ")}


def session_token(state: State, shop: str, *, lifetime: float = 60, **claims: Any) -> str:
    """A session token (id token) as App Bridge hands it to the app, signed with the secret."""
    now = int(time.time())
    doc = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": state.client_id,
        "sub": "42",
        "exp": now + int(lifetime),
        "nbf": now - 1,
        "iat": now,
        "jti": f"jti-{now}-{len(state.token_requests)}",
        "sid": "session-id",
        **claims,
    }
    return jwt.encode(doc, state.client_secret, algorithm="HS256")
