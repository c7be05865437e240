"""Timedify: the production backend of the Timedify Shopify app."""

from __future__ import annotations

__version__ = "0.1.0"
