"""scripts/audit (`make audit`) against stand-in pip-audit and bandit executables.

The stand-ins answer as the real tools do (their JSON formats, the traceback of a failed
connection), so each outcome is seen without a network or a vulnerable package: an unreachable
or uninformed vulnerability service is one line and not a pass, findings fail the audit, and
the checklist is always printed and written.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONNECTION_ERROR = (
    "Traceback (most recent call last):\n"
    "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443): Max "
    "retries exceeded (Caused by NameResolutionError(\"Failed to resolve 'pypi.org'\"))"
)


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, finding its tools in an empty directory of stand-ins."""
    loader = importlib.machinery.SourceFileLoader("audit_script", str(ROOT / "scripts" / "audit"))
    spec = importlib.util.spec_from_loader("audit_script", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "audit_script", module)  # dataclasses look the module up
    loader.exec_module(module)
    monkeypatch.setattr(module, "BIN", tmp_path)
    return module


def tool(directory: Path, name: str, stdout: str = "", stderr: str = "", code: int = 0) -> None:
    """An executable `name` that prints what the real tool would and exits with `code`."""
    (directory / "out").mkdir(exist_ok=True)
    (directory / "out" / f"{name}.stdout").write_text(stdout)
    (directory / "out" / f"{name}.stderr").write_text(stderr)
    path = directory / name
    path.write_text(
        f"#!/bin/sh\ncat '{directory}/out/{name}.stdout'\n"
        f"cat '{directory}/out/{name}.stderr' >&2\nexit {code}\n"
    )
    path.chmod(0o755)


def dependencies(*deps: dict[str, Any]) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


def test_an_unreachable_vulnerability_service_is_one_line_not_a_pass(
    audit: ModuleType, tmp_path: Path
) -> None:
    tool(tmp_path, "pip-audit", stderr=CONNECTION_ERROR, code=1)
    result = audit.pip_audit()
    assert result.ok is None
    assert "\n" not in result.line()
    assert result.line().startswith("pip-audit: not checked - the vulnerability service cannot")


def test_a_service_that_knows_no_package_is_not_a_pass(audit: ModuleType, tmp_path: Path) -> None:
    """An index mirror answers "not found" for each package: pip-audit alone says "no known
    vulnerabilities"."""
    skipped = [{"name": n, "skip_reason": "Dependency not found on PyPI"} for n in ("a", "b")]
    tool(tmp_path, "pip-audit", stdout=dependencies(*skipped))
    result = audit.pip_audit()
    assert result.ok is None
    assert "knows none of the 2 packages of requirements/prod.txt" in result.summary


def test_vulnerable_packages_fail_with_their_ids_and_fixes(
    audit: ModuleType, tmp_path: Path
) -> None:
    vulnerable = {
        "name": "jinja2",
        "version": "3.1.0",
        "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": []}],
    }
    clean = {"name": "httpx", "version": "0.28.1", "vulns": []}
    tool(tmp_path, "pip-audit", stdout=dependencies(vulnerable, clean), code=1)
    result = audit.pip_audit()
    assert result.ok is False
    assert result.summary == "1 vulnerable packages"
    assert result.details == "- jinja2 3.1.0: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)"


def test_a_clean_lock_file_passes(audit: ModuleType, tmp_path: Path) -> None:
    clean = {"name": "httpx", "version": "0.28.1", "vulns": []}
    tool(tmp_path, "pip-audit", stdout=dependencies(clean))
    assert audit.pip_audit().ok is True


def test_bandit_findings_fail_with_their_places(audit: ModuleType, tmp_path: Path) -> None:
    finding = {
        "filename": "src/timedify/x.py",
        "line_number": 3,
        "test_id": "B602",
        "issue_text": "subprocess call with shell=True identified",
    }
    tool(tmp_path, "bandit", stdout=json.dumps({"results": [finding]}), code=1)
    result = audit.bandit()
    assert result.ok is False
    assert "src/timedify/x.py:3 B602" in result.details
    tool(tmp_path, "bandit", stdout=json.dumps({"results": []}))
    assert audit.bandit().ok is True


def test_the_audit_goes_on_and_always_writes_the_checklist(
    audit: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """pip-audit unreachable, bandit clean: exit 0, both lines, the checklist on stdout and in
    the report."""
    tool(tmp_path, "pip-audit", stderr=CONNECTION_ERROR, code=1)
    tool(tmp_path, "bandit", stdout=json.dumps({"results": []}))
    monkeypatch.setattr(audit, "CHECKS", (audit.pip_audit, audit.bandit))
    report = tmp_path / "report" / "audit.md"
    assert audit.main(["--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("pip-audit: not checked")
    assert out.splitlines()[1].startswith("bandit: ok")
    assert "## Operator checklist" in out
    text = report.read_text()
    assert "- bandit: ok" in text
    assert "- [ ] Holders of `CONSOLE_PASSWORD` reviewed" in text
    assert "shops migrate-tokens --dry-run" in text
    tool(tmp_path, "bandit", stdout=json.dumps({"results": [{"filename": "f", "line_number": 1,
         "test_id": "B101", "issue_text": "assert"}]}), code=1)  # fmt: skip
    assert audit.main([]) == 1
