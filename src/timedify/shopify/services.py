"""The Shopify half assembled once per process: tokens, the Admin API client, billing.

The web app (app home), the worker (token refresh, billing re-reads, the daily sync) and the
CLI (`shops sync`) take it from here, so each piece is built the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from timedify.errors import ConfigError
from timedify.metrics import Metrics
from timedify.processing.followups import FollowUps, billing_followups
from timedify.processing.periodic import PeriodicJob
from timedify.settings import Settings
from timedify.shopify.admin import AdminClient
from timedify.shopify.billing import Billing
from timedify.shopify.crypto import TokenCipher
from timedify.shopify.oauth import OAuthClient
from timedify.shopify.tokens import REFRESH_EVERY, TokenManager
from timedify.toolkit import shops_sync

# How often a worker looks for shops whose daily sync is due (each run takes a few of them).
SYNC_CHECK_SECONDS = 300.0


@dataclass(frozen=True)
class ShopifyServices:
    engine: Engine
    settings: Settings
    tokens: TokenManager
    admin: AdminClient
    billing: Billing

    @classmethod
    def build(
        cls, settings: Settings, engine: Engine, metrics: Metrics | None = None
    ) -> ShopifyServices:
        """Everything that talks to Shopify; ConfigError while no TOKEN_ENCRYPTION_KEY is set."""
        if settings.token_encryption_key is None:
            raise ConfigError(["TOKEN_ENCRYPTION_KEY: missing (`timedify shops generate-key`)"])
        tokens = TokenManager(
            engine, settings, OAuthClient(settings), TokenCipher.from_settings(settings)
        )
        admin = AdminClient(settings, tokens, metrics=metrics)
        return cls(engine, settings, tokens, admin, Billing(engine, settings, admin))

    @classmethod
    def optional(
        cls, settings: Settings, engine: Engine, metrics: Metrics | None = None
    ) -> ShopifyServices | None:
        """`build`, or None without a key (a webhook-only deployment keeps running)."""
        if settings.token_encryption_key is None:
            return None
        return cls.build(settings, engine, metrics)

    def worker_jobs(self) -> list[PeriodicJob]:
        """The token refresh (S4) and the daily reconciliation (S8)."""
        return [
            PeriodicJob(
                "shopify_token_refresh", REFRESH_EVERY.total_seconds(), self.tokens.refresh_expiring
            ),
            PeriodicJob(
                "shops_sync",
                SYNC_CHECK_SECONDS,
                lambda: shops_sync.run_due(self.engine, self.settings, self.admin),
            ),
        ]

    def followups(self, busy: Callable[[], bool] | None = None) -> FollowUps:
        """The worker's `after_commit`: billing re-read after app_subscriptions/update (S7),
        put off while `busy()` (a burst of webhooks to acknowledge, a backlog to drain)."""
        return billing_followups(self.billing.refresh, busy=busy)
