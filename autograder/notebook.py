"""Reading submitted notebooks defensively: every problem becomes a ``SubmissionError`` with a clear reason."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat


MAX_NOTEBOOK_BYTES = 50 * 1024**2
# Cells a graded notebook may hold: the longest release has 68; a student's scratch cells add tens. Rendering and
# sanitising work per cell (round 5: 250,000 empty Markdown cells in 17 MB, a third of the byte limit, took the
# grader's rendering from 0.75 s to 181 s, with every classmate's record waiting behind it).
MAX_NOTEBOOK_CELLS = 2_000


class SubmissionError(Exception):
    """A submission that cannot be graded as it is; the message is shown to the student and the TA."""


def read_notebook(path: Path):
    """Reads and validates a notebook file."""
    if not path.is_file():
        raise SubmissionError(f"notebook {path.name} is missing from the submission")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(_too_big(path.name, size))
    return parse_notebook(path.read_bytes(), path.name)


def _too_big(name: str, size: int) -> str:
    return (f"{name} is {size / 1e6:.0f} MB, over the {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB limit "
            "(clear large outputs before submitting)")


def parse_notebook(data: bytes, name: str):
    """Validates a notebook from its bytes (what the judge read from the submission); ``name`` for messages."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(_too_big(name, len(data)))
    try:
        document = json.loads(data.decode())  # counted before nbformat validates (and converts) each cell
    except (json.JSONDecodeError, UnicodeDecodeError):
        document = None
    _check_cell_count(_cell_count(document), name)
    try:
        nb = nbformat.reads(data.decode(), as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError, UnicodeDecodeError) as err:
        raise SubmissionError(f"{name} is not valid notebook JSON ({type(err).__name__}); "
                              "re-download it from JupyterLab (File > Download)") from err
    except Exception as err:  # nbformat raises assorted errors on malformed documents
        raise SubmissionError(f"{name} cannot be read as a notebook: {type(err).__name__}: {err}") from err
    _check_cell_count(len(nb.cells), name)  # whatever the format kept them in
    return nb


def _cell_count(document) -> int:
    """Cells of a notebook's JSON in either format: ``cells`` (nbformat 4) or each worksheet's (nbformat 3, which
    nbformat converts; round 6 put 250,054 cells there, past a count of ``cells`` alone)."""
    if not isinstance(document, dict):
        return 0
    count = len(document["cells"]) if isinstance(document.get("cells"), list) else 0
    for sheet in document.get("worksheets", ()) if isinstance(document.get("worksheets"), list) else ():
        count += len(sheet["cells"]) if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list) else 0
    return count


def _check_cell_count(count: int, name: str) -> None:
    if count > MAX_NOTEBOOK_CELLS:
        raise SubmissionError(f"{name} has {count:,} cells, over the {MAX_NOTEBOOK_CELLS:,} cell limit (the "
                              "assignment has under 100): delete the empty or scratch cells and submit again")


def grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if isinstance(meta, dict) else None


def first_cells_by_id(nb) -> dict:
    """grade_id → the first cell carrying it (duplicates, from copied cells, are ignored)."""
    cells = {}
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid and gid not in cells:
            cells[gid] = cell
    return cells


def duplicated_ids(nb) -> list[str]:
    seen, dups = set(), []
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid is None:
            continue
        if gid in seen:
            dups.append(gid)
        seen.add(gid)
    return dups


def require_assignment(nb, required_ids: set[str], assignment: str) -> None:
    present = set(first_cells_by_id(nb))
    missing = required_ids - present
    if len(missing) == len(required_ids):
        raise SubmissionError(f"this is not the {assignment} notebook: none of its graded cells is present")
    if missing:
        raise SubmissionError(f"graded cells {sorted(missing)} were deleted from the {assignment} notebook; "
                              "start again from the released notebook and copy your code into it")


def answer_cells(nb) -> dict:
    """grade_id → source of each manually graded Markdown answer cell."""
    from nbgrader.utils import is_solution

    return {gid: c.source for gid, c in first_cells_by_id(nb).items() if c.cell_type == "markdown" and is_solution(c)}
