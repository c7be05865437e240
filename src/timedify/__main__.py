"""`python -m timedify` runs the CLI."""

from __future__ import annotations

from timedify.cli import main

main()
