"""``feedback``: nbgrader's generate_feedback for every graded student, then a scan of the HTML: it must not contain
any line of the hidden tests (the autograded notebooks keep only each check's name and message)."""

from __future__ import annotations

from autograder.errors import GraderError
from autograder.course import Course, run_nbgrader
from autograder.leaks import hidden_lines, scan


def feedback(course: Course, assignment: str, log=print) -> int:
    proc = run_nbgrader(["generate_feedback", assignment, "--force"], course.root, course.db_url)
    if proc.returncode != 0:
        raise GraderError(f"nbgrader generate_feedback failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    folder = course.root / "feedback"
    pages = sorted(folder.glob(f"*/{assignment}/*.html")) if folder.is_dir() else []
    leaks = scan([p.parent for p in pages], hidden_lines(course.root / "source" / assignment / f"{assignment}.ipynb"),
                 suffixes=(".html",))
    if leaks:
        raise GraderError("feedback contains hidden test code:\n  " + "\n  ".join(leaks[:10]))
    log(f"feedback: {len(pages)} page(s) in feedback/*/{assignment}/, no hidden test code in them")
    return len(pages)
