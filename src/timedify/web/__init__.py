"""The ASGI app factory and the routes that are not the webhook endpoint (SPEC H)."""
