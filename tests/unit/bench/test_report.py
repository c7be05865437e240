"""docs/benchmarks.md keeps one block of figures per scenario, however often `make bench` runs."""

from __future__ import annotations

from pathlib import Path

from bench import report

ORDER = ("health", "ack", "e2e")
DOC = "# Benchmarks\n\nMethod.\n\n## Latest figures\n\nIntroduction.\n\n## Limits\n\nText.\n"


def _headings(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("#")]


def _record(path: Path, name: str, figure: str) -> None:
    block = report.block(name, [f"#### {figure}\n"], None, "1 repetition")
    report.update({name: block}, ORDER, path)


def test_a_run_replaces_its_scenarios_blocks_and_keeps_the_rest_of_the_document(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)
    _record(doc, "e2e", "first e2e")
    _record(doc, "health", "health")
    _record(doc, "e2e", "second e2e")
    assert _headings(doc) == [
        "# Benchmarks",
        "## Latest figures",
        "### health",
        "#### health",
        "### e2e",
        "#### second e2e",
        "## Limits",
    ]
    text = doc.read_text()
    assert "Method." in text
    assert "Introduction." in text
    assert text.endswith("Text.\n")
    assert "code " in text  # every block says which commit it measured


def test_a_run_on_one_database_goes_beside_both_until_the_next_run_on_both(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)
    _record(doc, "e2e", "both")
    _record(doc, "e2e:sqlite", "sqlite")
    assert "### e2e (sqlite only)" in _headings(doc)
    assert "#### both" in _headings(doc)
    _record(doc, "e2e", "both again")
    assert [h for h in _headings(doc) if h.startswith("###")] == ["### e2e", "#### both again"]


def test_a_document_without_the_section_gets_it(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nMethod.\n")
    _record(doc, "ack", "ack")
    assert _headings(doc) == ["# Benchmarks", "## Latest figures", "### ack", "#### ack"]
