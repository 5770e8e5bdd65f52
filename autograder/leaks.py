"""Finding grader-only text where students can see it: solutions, model answers and hidden tests of the source
notebooks, searched in the release, in course_lib and in generated feedback."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", flags=re.S)
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", flags=re.S)
MIN_LENGTH = 30


def secret_lines(source_notebook: Path, include_answers: bool = True) -> set[str]:
    """Distinctive lines (>= 30 characters) of solution regions, hidden tests and model answers, minus any line that
    also appears in the notebook's public part (a hidden test may repeat a visible one)."""
    nb = nbformat.read(source_notebook, as_version=4)
    secrets, public = set(), set()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        regions = SOLUTION.findall(cell.source) + HIDDEN.findall(cell.source)
        answer = cell.cell_type == "markdown" and meta.get("solution")
        if answer and include_answers:
            regions.append(cell.source)
        visible = cell.source
        for region in regions:
            visible = visible.replace(region, "")
        if not answer:
            public |= {line.strip() for line in visible.splitlines()}
        for region in regions:
            secrets |= {line.strip() for line in region.splitlines() if len(line.strip()) >= MIN_LENGTH}
    return secrets - public


def hidden_lines(source_notebook: Path) -> set[str]:
    """Lines of hidden tests only (the part that must never appear in feedback)."""
    nb = nbformat.read(source_notebook, as_version=4)
    visible = {line.strip() for c in nb.cells for line in HIDDEN.sub("", c.source).splitlines()}
    return {line.strip() for c in nb.cells for region in HIDDEN.findall(c.source) for line in region.splitlines()
            if len(line.strip()) >= MIN_LENGTH and line.strip() not in visible}


def _text(path: Path) -> str:
    if path.suffix == ".ipynb":
        try:
            return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
        except Exception:
            pass
    return path.read_text(errors="ignore")


def scan(folders: list[Path], secrets: set[str], suffixes=(".py", ".ipynb", ".md", ".txt", ".json", ".html")) -> list[str]:
    """``"path: line"`` for every secret line found in the files under ``folders``."""
    found = []
    for folder in folders:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in suffixes):
            text = _text(path)
            if path.suffix == ".html":
                import html

                text = html.unescape(re.sub(r"<[^>]+>", "", text))
            found += [f"{path}: {line}" for line in secrets if line in text]
    return found
