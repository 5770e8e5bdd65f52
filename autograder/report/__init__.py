"""``python -m autograder report``: one HTML page per term for the instructor: where the class lost its points.

    data.py   what the page shows, read from the gradebook (``autograder.export.scores_table``, nbgrader's API) and
              the grading records (``autograder.records.RecordStore``); nothing is computed a second time
    page.py   the page: tables, and matplotlib plots embedded as PNG data (one file, no other files to keep)

For each assignment: the distribution of totals and the recomputed mIoU with the term's tiers drawn on it
(``GradedSetting.tiers``); every check and every part of a check with the share of students who earned it and the
most common failure messages; the written answers' manual scores per question; lateness and extensions; the flagged
submissions with their problems and suspicions; the grading time per student. Nothing here changes a grade.
"""

from __future__ import annotations

from pathlib import Path

from autograder.course import Course
from autograder.errors import GraderError


def class_report(course: Course, assignments: list[str] | None = None, out: Path | None = None) -> Path:
    """Writes the term's page (default ``<course>/grading/report/class_report.html``) and returns its path.

    Args:
        assignments: which assignments (default: every one the course declares, in the declaration's order).

    Raises:
        GraderError: no assignment has students in the gradebook yet.
    """
    from autograder.report.data import assignment_report, extensions_table, late_policy
    from autograder.report.page import page
    from autograder.term import GradedSetting

    setting = GradedSetting.read(course.root)
    names = assignments or course.assignments()
    reports, missing = [], []
    for name in names:
        report = assignment_report(course, name, setting.tiers)
        (reports if report is not None else missing).append(report or name)
    if not reports:
        raise GraderError(f"no students in the gradebook for {', '.join(names) or 'any assignment'}: run "
                          "`python -m autograder collect` and `grade` first")
    title = f"Class report: {course.root.name}"
    text = page(title, f"Term: {setting.describe()}.", reports, missing, setting.tiers, late_policy(course.root),
                extensions_table(course.root))
    path = Path(out) if out is not None else course.root / "grading" / "report" / "class_report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
