"""Issue 7.6 / SPEC H3: every test of the suite is also a leak test.

After each test, everything it captured (stdout, stderr, log records: the in-process service
logs through the real JSON configuration) and every `*.log` file in its `tmp_path` (the logs of
service subprocesses) is scanned for the test secrets, customer data of the sample payloads,
access tokens and anything shaped like an HMAC signature. A hit fails the test that produced it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.settings import PREVIOUS_SECRET, PREVIOUS_TOKEN_KEY, SECRET, TOKEN_KEY

FORBIDDEN = (
    SECRET,
    PREVIOUS_SECRET,
    TOKEN_KEY,
    PREVIOUS_TOKEN_KEY,
    "john@example.com",
    "+15556251199",
    "5556251199",
)
# base64 of a 32-byte HMAC digest, and Shopify access- and refresh-token prefixes.
PATTERNS = (
    re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}="),
    re.compile(r"shp(at|ua|ca|ss|rt)_"),
)


def find_leaks(text: str) -> list[str]:
    found = [f"literal {value[:6]}…" for value in FORBIDDEN if value in text]
    found += [f"pattern {p.pattern}" for p in PATTERNS if p.search(text)]
    return found


def _texts(item: pytest.Item) -> Iterator[tuple[str, str]]:
    for when, key, content in getattr(item, "_report_sections", []):
        yield f"captured {key} ({when})", content
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if isinstance(tmp_path, Path):
        for log in tmp_path.rglob("*.log"):
            yield str(log.name), log.read_text(errors="replace")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "teardown" or item.get_closest_marker("leaks_on_purpose"):
        return
    leaks = [
        f"{where}: {', '.join(hits)}" for where, text in _texts(item) if (hits := find_leaks(text))
    ]
    if leaks:
        report.outcome = "failed"
        report.longrepr = "secret or personal data reached a log:\n  " + "\n  ".join(leaks)
