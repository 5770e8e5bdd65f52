"""A grading record's scores in nbgrader's gradebook (SQLite or any SQLAlchemy URL), through nbgrader's ``Gradebook``.

``write_record`` is called by ``autograder.records.RecordStore.save`` and nothing else: the store is the only writer
of the gradebook's automatic scores. Only the main grading process writes, one student at a time, so parallel
workers never contend for the database; what is written comes from the record, never from a worker's scratch
gradebook (which the student's kernel could have touched). A TA's manual scores are never changed.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone

from nbgrader.api import Gradebook, MissingEntry

NO_RESPONSE = "No response."  # nbgrader's own comment on an answer left as released (``SaveAutoGrades``)


def write_record(db_url: str, record, notebook: str) -> None:
    """Sets one submission's automatic scores from ``record`` (``autograder.records.GradingRecord``).

    - an autograded cell: the record's points; a cell a TA already scored keeps its review flag;
    - a written answer (``record.written``): nbgrader's rule: left as released, 0 points and "No response."; answered,
      no automatic score and a TA's turn;
    - any other graded cell (a code cell no check covers, or answers of a notebook nbgrader could not render): a TA's
      turn, unless a score is there already;
    - the notebook is flagged for the TA when ``record.flagged``; the submission gets the record's time.
    """
    checks = {check.grade_id: check for check in record.checks}
    written = {answer.grade_id: answer for answer in record.written}
    with Gradebook(db_url) as gb:
        try:
            gb.find_student(record.student)
        except MissingEntry:
            gb.add_student(record.student)
        with warnings.catch_warnings():  # nbgrader's API trips SQLAlchemy 2's autoflush warnings
            warnings.simplefilter("ignore")
            gb.update_or_create_submission(record.assignment, record.student, timestamp=_naive_utc(record.submitted_at))
        nb = gb.find_submission_notebook(notebook.removesuffix(".ipynb"), record.assignment, record.student)
        for grade in nb.grades:
            if grade.name in checks:
                grade.auto_score = checks[grade.name].points
                grade.needs_manual_grade = grade.needs_manual_grade if grade.manual_score is not None else False
            elif grade.name in written:
                answered = written[grade.name].answered
                grade.auto_score = None if answered else 0.0
                grade.needs_manual_grade = answered or grade.manual_score is not None
            elif grade.auto_score is None and grade.manual_score is None:
                grade.needs_manual_grade = True
        for comment in nb.comments:
            if comment.name in written:
                comment.auto_comment = None if written[comment.name].answered else NO_RESPONSE
        nb.flagged = record.flagged
        gb.db.commit()


def _naive_utc(when: datetime | None) -> datetime | None:
    """nbgrader keeps times as naive UTC."""
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when is not None else None


def submissions_of(gb: Gradebook, assignment: str) -> list:
    """The gradebook's submissions of ``assignment`` (nbgrader's ``SubmittedAssignment`` rows); none when the assignment
    was never released into this gradebook."""
    try:
        return list(gb.find_assignment(assignment).submissions)
    except MissingEntry:
        return []


def gradebook_points(db_url: str, assignment: str, notebook: str) -> dict[str, float]:
    """``{grade_id: points}`` of the notebook's graded cells as the gradebook holds them (from the release)."""
    from autograder.errors import GraderError

    with Gradebook(db_url) as gb:
        try:
            nb = gb.find_notebook(notebook.removesuffix(".ipynb"), assignment)
        except MissingEntry:
            raise GraderError(f"{assignment} is not in the gradebook: run `python -m autograder release` first") from None
        return {cell.name: float(cell.max_score) for cell in nb.grade_cells}


def release_cell_ids(db_url: str, assignment: str, notebook: str) -> set[str]:
    """The grade ids of every nbgrader cell of the released notebook (graded, solution, locked, task), as the
    gradebook holds them; empty when it was not released into this gradebook."""
    with Gradebook(db_url) as gb:
        try:
            nb = gb.find_notebook(notebook.removesuffix(".ipynb"), assignment)
        except MissingEntry:
            return set()
        return {cell.name for cell in (*nb.source_cells, *nb.grade_cells, *nb.solution_cells, *nb.task_cells)}
