"""Expected failures, each with a message an operator can act on.

The CLI turns these into one line on stderr and an exit code; the web layer into a status code
and one log event. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TimedifyError(Exception):
    """Base of every expected failure."""

    exit_code = 1


class ConfigError(TimedifyError):
    """One or more settings are missing or malformed."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class UsageError(TimedifyError):
    """The command line asks for something impossible (a missing or conflicting argument).

    Exit code 2 in every command, as Click gives its own usage errors."""

    exit_code = 2


class ListenError(TimedifyError):
    """`serve` cannot listen on its HOST and PORT (in use, not an address of this machine)."""

    exit_code = 2


class ServiceStartError(TimedifyError):
    """The service stopped while starting; its log lines say why."""

    exit_code = 1


class DatabaseBehindError(TimedifyError):
    """The database schema is older than the code: migrations have not been applied."""

    exit_code = 3


class DatabaseAheadError(TimedifyError):
    """The database schema is newer than the code: a newer release migrated it."""

    exit_code = 3


class DatabaseUnavailableError(TimedifyError):
    """The database could not be reached or did not answer in time."""

    exit_code = 4


def describe(exc: BaseException, limit: int = 300) -> str:
    """`Type: first line of the message`: enough to diagnose a driver error, and without the
    statement and its parameters that SQLAlchemy appends on later lines."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:limit]}" if text else type(exc).__name__


def database_reason(exc: BaseException, password: str | None = None, limit: int = 300) -> str:
    """The driver's own first line, e.g. `connection to server at "127.0.0.1", port 5433
    failed: Connection refused`: what an operator acts on. SQLAlchemy's wrapper adds only the
    class and a link; the password, should a driver ever repeat it, is masked."""
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    text = lines[0].strip() if lines else ""
    text = text.removeprefix("connection failed: ")[:limit]
    if password:
        text = text.replace(password, "***")
    return text or type(inner).__name__
