"""Finding grader-only text where students can see it: solutions, model answers and hidden tests of the source
notebooks, searched in the release, in course_lib and in generated feedback.

In feedback only the instructor's cells are searched (``hidden_in_instructor_cells``): a student may write any text
in their own cells, a hidden test's line too (the README quotes them), and that is no leak; what would be one is the
instructor's test cells keeping their hidden part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

MIN_LENGTH = 30


@dataclass(frozen=True)
class Delimiters:
    """The markers of solution regions and hidden tests, as nbgrader is configured to read them."""

    solution: tuple[str, str] = ("BEGIN SOLUTION", "END SOLUTION")
    hidden: tuple[str, str] = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")

    @classmethod
    def of_course(cls, course_root: Path) -> "Delimiters":
        """Read through nbgrader's own preprocessors from the course's ``nbgrader_config.py`` (nbgrader's defaults
        where the file does not set them), so that changing a delimiter there changes it here too."""
        from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

        from autograder.course import nbgrader_config

        config = nbgrader_config(course_root)
        solutions, hidden = ClearSolutions(config=config), ClearHiddenTests(config=config)
        return cls((solutions.begin_solution_delimeter, solutions.end_solution_delimeter),
                   (hidden.begin_test_delimeter, hidden.end_test_delimeter))


def regions(source: str, markers: tuple[str, str]) -> list[str]:
    """The text between a line holding ``markers[0]`` and the next line holding ``markers[1]`` (as nbgrader reads
    them: the marker anywhere on its line), for every such region of ``source``."""
    return _split(source, [markers])[0]


def outside_lines(source: str, marker_pairs: list[tuple[str, str]]) -> list[str]:
    """The lines of ``source`` outside every region (marker lines excluded)."""
    return _split(source, marker_pairs)[1]


def _split(source: str, marker_pairs: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    found, outside, current, end = [], [], None, None
    for line in source.splitlines(keepends=True):
        if current is None:
            begin = next((pair for pair in marker_pairs if pair[0] in line), None)
            if begin is None:
                outside.append(line.rstrip("\n"))
            else:
                current, end = [], begin[1]
        elif end in line:
            found.append("".join(current))
            current = None
        else:
            current.append(line)
    return found, outside


def _course_of(source_notebook: Path) -> Path:
    return Path(source_notebook).resolve().parents[2]  # <course>/source/<assignment>/<notebook>


def secret_lines(source_notebook: Path, include_answers: bool = True) -> set[str]:
    """Distinctive lines (>= 30 characters) of solution regions, hidden tests and model answers, minus any line that
    also appears in the notebook's public part (a hidden test may repeat a visible one)."""
    nb = nbformat.read(source_notebook, as_version=4)
    marks = Delimiters.of_course(_course_of(source_notebook))
    secrets, public = set(), set()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        found = regions(cell.source, marks.solution) + regions(cell.source, marks.hidden)
        answer = cell.cell_type == "markdown" and meta.get("solution")
        if answer and include_answers:
            found.append(cell.source)
        if not answer:
            public |= {line.strip() for line in outside_lines(cell.source, [marks.solution, marks.hidden])}
        for region in found:
            secrets |= {line.strip() for line in region.splitlines() if len(line.strip()) >= MIN_LENGTH}
    return secrets - public


def hidden_lines(source_notebook: Path) -> set[str]:
    """Lines of hidden tests only (the part that must never appear in feedback)."""
    nb = nbformat.read(source_notebook, as_version=4)
    marks = Delimiters.of_course(_course_of(source_notebook)).hidden
    hidden, visible = set(), set()
    for cell in nb.cells:
        hidden |= {line.strip() for region in regions(cell.source, marks) for line in region.splitlines()}
        visible |= {line.strip() for line in outside_lines(cell.source, [marks])}
    return {line for line in hidden if len(line) >= MIN_LENGTH and line not in visible}


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


def instructor_ids(source_notebook: Path) -> set[str]:
    """The grade ids of the source notebook's cells that the instructor writes and students do not (test cells,
    locked text): nbgrader's ``OverwriteCells`` restores these from the gradebook in every graded notebook."""
    nb = nbformat.read(source_notebook, as_version=4)
    return {meta["grade_id"] for meta in (cell.metadata.get("nbgrader", {}) for cell in nb.cells)
            if meta.get("grade_id") and not meta.get("solution")}


def hidden_in_instructor_cells(notebooks: list[Path], source_notebook: Path,
                               submitted: dict[Path, Path] | None = None) -> list[str]:
    """``"path: line"`` for every hidden-test line (``hidden_lines``) in the instructor's cells (``instructor_ids``)
    of the graded ``notebooks`` (``autograded/<student>/<assignment>/``, which feedback renders). Student-written
    cells are not searched; a notebook nbgrader could not read has no instructor's cells.

    ``submitted``: each graded notebook's submitted file (``submitted/<student>/<assignment>/``). A line that is in
    the student's own submission came from the student, not from the grader: no leak (round 5: a student pasted a
    hidden line into a test cell and gave it metadata nbgrader could not restore; the raw copy shown in its place
    made the scan stop feedback for the whole class). Links are never followed."""
    secrets, ids = hidden_lines(source_notebook), instructor_ids(source_notebook)
    found = []
    for path in notebooks:
        try:
            cells = nbformat.read(path, as_version=4).cells
        except Exception:
            continue
        text = "\n".join(cell.source for cell in cells if cell.metadata.get("nbgrader", {}).get("grade_id") in ids)
        own = (submitted or {}).get(path)
        theirs = _text(own) if own is not None and own.is_file() and not own.is_symlink() else ""
        found += [f"{path}: {line}" for line in sorted(secrets) if line in text and line not in theirs]
    return found
