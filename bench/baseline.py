"""The baseline: a raw ASGI app that reads the body and answers 200, served like the service.

`python -m bench.baseline PORT` runs it with `timedify.web.server.uvicorn_options()`, the
options `timedify serve` uses (loop, HTTP parser, limits), in one process, so the only
difference between the baseline and the service is the work the service does per request.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from timedify.web.server import uvicorn_options

Message = MutableMapping[str, Any]
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"21")]
_BODY = b'{"status":"accepted"}'


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Read the whole body, answer 200 with the body the service answers with."""
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def main() -> None:
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), lifespan="off", **uvicorn_options())


if __name__ == "__main__":
    main()
