"""errors.describe: a driver error in one line, without the statement's parameters."""

from __future__ import annotations

from timedify.errors import describe


def test_describe_keeps_the_type_and_the_first_line_only() -> None:
    exc = RuntimeError("connection refused\n[SQL: INSERT ...]\n[parameters: ('secret',)]")
    assert describe(exc) == "RuntimeError: connection refused"


def test_describe_bounds_the_length_and_names_a_bare_exception() -> None:
    assert describe(ValueError("x" * 1000), limit=10) == "ValueError: xxxxxxxxxx"
    assert describe(TimeoutError()) == "TimeoutError"
