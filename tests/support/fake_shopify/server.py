"""The fake Shopify served by uvicorn on 127.0.0.1, in a thread of the test process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette

from tests.support.fake_shopify import admin, oauth
from tests.support.fake_shopify.state import State
from tests.support.pgcluster import free_port
from tests.support.servers import serve_in_thread


def build_app(state: State) -> Starlette:
    """The ASGI app of the fake Shopify for `state`."""
    return Starlette(routes=[*oauth.routes(state), *admin.routes(state)])


class FakeShopify:
    """A running fake Shopify; `origin` is the value for `SHOPIFY_API_ORIGIN`."""

    def __init__(self, state: State, port: int) -> None:
        self.state = state
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"


@contextmanager
def running(state: State | None = None, port: int | None = None) -> Iterator[FakeShopify]:
    """Serve a fake Shopify for the duration of the block."""
    fake = FakeShopify(state or State(), port or free_port())
    with serve_in_thread(build_app(fake.state), fake.port):
        yield fake
