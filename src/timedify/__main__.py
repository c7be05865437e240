"""`python -m timedify` runs the CLI."""

from __future__ import annotations

from timedify.cli import main

if __name__ == "__main__":  # run, never on import (worker processes may import it)
    main()
