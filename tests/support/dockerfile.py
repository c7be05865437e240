"""Read a Dockerfile the way the builder does, enough to check and reuse its final stage.

The sandbox test runs the image's own ENV, USER, VOLUME, CMD and HEALTHCHECK, so the Dockerfile
and what is proven here cannot drift apart.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    """One `FROM ... [AS name]` block and its instructions in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name or self.base}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """ENV key=value pairs; a later ENV wins (no $VAR expansion needed by the tests)."""
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def exec_form(self, keyword: str) -> list[str]:
        """A JSON-array instruction (CMD, VOLUME, ...) as a list."""
        value = json.loads(self.last(keyword))
        assert isinstance(value, list), f"{keyword} is not in exec (JSON) form"
        return [str(v) for v in value]

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """HEALTHCHECK options and its exec-form command."""
        args = self.last("HEALTHCHECK")
        options_part, _, command = args.partition("CMD ")
        options = dict(o.removeprefix("--").split("=", 1) for o in options_part.split())
        return options, json.loads(command)


def logical_lines(text: str) -> list[str]:
    """Instructions with `\\` continuations joined and comment lines dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    return [line for line in lines if line]


def parse(path: Path) -> list[Stage]:
    """Stages of the Dockerfile at `path`, in order."""
    stages: list[Stage] = []
    for line in logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages
