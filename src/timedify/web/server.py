"""How the service is served: uvicorn's options and `run` (what `timedify serve` starts).

`bench/` serves its raw-ASGI baseline with exactly these options, so the two are comparable.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from timedify.ingest.slow_clients import head_timeout_protocol
from timedify.settings import Settings
from timedify.web.app import background_services, create_app


def uvicorn_options(header_read_timeout_seconds: float | None = None) -> dict[str, Any]:
    """How uvicorn serves the app; `bench/` serves its raw-ASGI baseline with exactly these.

    `header_read_timeout_seconds`: the bound on a request head (`slowclients`); None is the
    setting's default.
    """
    if header_read_timeout_seconds is None:
        header_read_timeout_seconds = Settings.model_fields["header_read_timeout_seconds"].default
    return {
        "loop": "uvloop",
        "http": head_timeout_protocol(header_read_timeout_seconds),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_keep_alive": 75,
        "timeout_graceful_shutdown": 10,
        "limit_concurrency": 2048,
        "backlog": 4096,
    }


def run(settings: Settings) -> None:
    """Serve the app until a signal stops it (`timedify serve`)."""
    uvicorn.run(
        create_app(settings, background=background_services(settings)),
        host=settings.host,
        port=settings.port,
        **uvicorn_options(settings.header_read_timeout_seconds),
    )
