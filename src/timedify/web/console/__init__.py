"""The operator console at `/console` (SPEC C1-C5): server-rendered pages over the same
functions as the CLI, served only when `CONSOLE_PASSWORD` is set."""

from __future__ import annotations

from timedify.web.console.common import Console, Page
from timedify.web.console.routes import routes

__all__ = ["Console", "Page", "routes"]
