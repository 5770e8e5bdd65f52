"""``feedback``: nbgrader's generate_feedback for every graded student, then a scan of the HTML: it must not contain
any line of the hidden tests (the autograded notebooks keep only each check's name and message).

Who has been graded is the record store's word (``autograder.records``): a submitted student without a record is
named (grade them first), and so is a graded student nbgrader made no page for.
"""

from __future__ import annotations

from autograder.course import Course, run_nbgrader
from autograder.errors import GraderError
from autograder.leaks import hidden_lines, scan
from autograder.records import RecordStore


def feedback(course: Course, assignment: str, log=print) -> int:
    """Writes ``feedback/<student>/<assignment>/*.html`` for every graded student; returns the number of pages."""
    graded = RecordStore(course, assignment).students()
    ungraded = sorted(set(course.submitted(assignment)) - set(graded))
    if ungraded:
        log(f"feedback: not graded yet, no feedback for {', '.join(ungraded)} (run `grade {assignment}` first)")
    proc = run_nbgrader(["generate_feedback", assignment, "--force"], course.root, course.db_url)
    if proc.returncode != 0:
        raise GraderError(f"nbgrader generate_feedback failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    folder = course.root / "feedback"
    pages = sorted(folder.glob(f"*/{assignment}/*.html")) if folder.is_dir() else []
    leaks = scan([p.parent for p in pages], hidden_lines(course.root / "source" / assignment / f"{assignment}.ipynb"),
                 suffixes=(".html",))
    if leaks:
        raise GraderError("feedback contains hidden test code:\n  " + "\n  ".join(leaks[:10]))
    missing = sorted(set(graded) - {page.parent.parent.name for page in pages})
    if missing:
        log(f"feedback: graded but without a page: {', '.join(missing)} (nbgrader could not render their notebook; "
            "the grader's summary in formgrader says why)")
    log(f"feedback: {len(pages)} page(s) in feedback/*/{assignment}/, no hidden test code in them")
    return len(pages)
