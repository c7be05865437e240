"""How the service is served: uvicorn's options and `run` (what `timedify serve` starts).

`bench/` serves its raw-ASGI baseline with exactly these options, so the two are comparable.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from timedify.ingest.slow_clients import head_timeout_protocol
from timedify.settings import Settings
from timedify.web.app import background_services, create_app


def uvicorn_options(
    header_read_timeout_seconds: float | None = None, retry_after_seconds: int | None = None
) -> dict[str, Any]:
    """How uvicorn serves the app; `bench/` serves its raw-ASGI baseline with exactly these.

    `header_read_timeout_seconds`: the bound on a request head (`slow_clients`);
    `retry_after_seconds`: the `Retry-After` of an overload answer; None is each setting's
    default. Connections and requests in flight are bounded by the protocol, not by uvicorn's
    `limit_concurrency`: that one counts idle connections and answers them plain text.
    """
    if header_read_timeout_seconds is None:
        header_read_timeout_seconds = Settings.model_fields["header_read_timeout_seconds"].default
    if retry_after_seconds is None:
        retry_after_seconds = Settings.model_fields["retry_after_seconds"].default
    return {
        "loop": "uvloop",
        "http": head_timeout_protocol(header_read_timeout_seconds, retry_after_seconds),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_keep_alive": 75,
        "timeout_graceful_shutdown": 10,
        "limit_concurrency": None,
        "backlog": 4096,
    }


def run(settings: Settings) -> None:
    """Serve the app until a signal stops it (`timedify serve`)."""
    uvicorn.run(
        create_app(settings, background=background_services(settings)),
        host=settings.host,
        port=settings.port,
        **uvicorn_options(settings.header_read_timeout_seconds, settings.retry_after_seconds),
    )
