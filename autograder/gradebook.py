"""Writing the judge's verdicts into nbgrader's gradebook (SQLite or any SQLAlchemy URL).

Only the main grading process writes here, one student at a time, so parallel workers never contend for the
database. What is written comes from the judge and from the submission's own timestamp, never from a worker's
scratch gradebook (which the student's kernel could have touched). Manual scores entered in formgrader are never
changed: re-grading updates ``auto_score`` only.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone

from nbgrader.api import Gradebook, MissingEntry


def _ensure_student(gb: Gradebook, student: str) -> None:
    try:
        gb.find_student(student)
    except MissingEntry:
        gb.add_student(student)


def apply_verdict(grade, fraction: float) -> float:
    """The one rule for an autograded cell: the check's ``fraction`` of its points (1 passed, 0 failed, between
    for a check whose parts passed in part); a TA's manual score is never changed, and a cell a TA already scored
    keeps its review flag. Returns the points."""
    grade.auto_score = float(grade.max_score) * float(fraction)
    grade.needs_manual_grade = False if grade.manual_score is None else grade.needs_manual_grade
    return grade.auto_score


def record_verdict(db_url: str, assignment: str, student: str, notebook: str, scores: dict[str, float],
                   timestamp: datetime | None, flagged: bool) -> dict:
    """Sets the autograded cells of one submission from the judge's verdicts.

    Args:
        scores: ``{grade_id: fraction of the points}`` for autograded cells; others (manual answers) are left alone.
        timestamp: submission time (UTC) for lateness, or None.
        flagged: mark the notebook for a TA's attention (invalid notebook, crash, timeout).
    Returns:
        ``{grade_id: points}`` written.
    """
    written = {}
    with Gradebook(db_url) as gb:
        _ensure_student(gb, student)
        kwargs = {"timestamp": timestamp.astimezone(timezone.utc).isoformat()} if timestamp else {}
        with warnings.catch_warnings():  # nbgrader's API trips SQLAlchemy 2's autoflush warnings
            warnings.simplefilter("ignore")
            gb.update_or_create_submission(assignment, student, **kwargs)
        nb = gb.find_submission_notebook(notebook.removesuffix(".ipynb"), assignment, student)
        for grade in nb.grades:
            if grade.name in scores:
                written[grade.name] = apply_verdict(grade, scores[grade.name])
            elif grade.auto_score is None and grade.manual_score is None:
                grade.needs_manual_grade = True
        nb.flagged = bool(flagged)
        gb.db.commit()
    return written


def max_scores(db_url: str, assignment: str, notebook: str) -> dict[str, float]:
    with Gradebook(db_url) as gb:
        nb = gb.find_notebook(notebook.removesuffix(".ipynb"), assignment)
        return {cell.name: float(cell.max_score) for cell in nb.grade_cells}
