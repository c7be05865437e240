"""What the README and the runbook tell an operator before the first command on Fly."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
RUNBOOK = (ROOT / "docs" / "operations.md").read_text()


def test_the_readme_says_how_to_get_timedify_on_the_path() -> None:
    """The quick start uses `.venv/bin/timedify`, every other page a bare `timedify`."""
    assert "source .venv/bin/activate" in README
    assert "pipx install ." in README
    assert "source .venv/bin/activate" in RUNBOOK


def test_the_runbook_says_how_to_reach_the_database_from_outside_fly() -> None:
    assert "fly proxy 15432:5432 --app timedify-db" in RUNBOOK
    assert "127.0.0.1:15432" in RUNBOOK


def test_the_daily_backup_goes_where_it_can_be_written_and_needs_pg_dump() -> None:
    daily = RUNBOOK.split("## Daily", 1)[1].split("\n## ", 1)[0]
    assert "--output /backups/" not in daily  # a directory that exists nowhere by default
    assert "--output backups/" in daily
    assert "postgresql-client" in daily


def test_the_runbook_says_what_fly_logs_no_tail_covers() -> None:
    """`fly logs --no-tail` prints one page of Fly's buffer: the 24 h scan needs another source."""
    daily = RUNBOOK.split("## Daily", 1)[1].split("\n## ", 1)[0]
    assert "`fly logs --no-tail` does not return 24 hours" in daily
    assert 'LOG_FILE = "timedify.log"' in daily
    assert "log shipper" in daily.lower()
