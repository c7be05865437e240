"""The worker loop, batch application, handlers, retry policy and redaction (SPEC P)."""
