"""``feedback``: nbgrader's generate_feedback for every student whose grade is complete, then a scan of what the
pages show of the instructor's cells: no line of the hidden tests may be there (the autograded notebooks keep only
each check's name and message). Student-written cells are not scanned, nor lines the student's own submission holds
(``autograder.leaks.hidden_in_instructor_cells``); a page that leaks is withheld alone, and the log says so: nothing
one student writes stops the class's feedback.

Who has been graded is the record store's word (``autograder.records``): a submitted student without a record is
named (grade them first), and so is a graded student nbgrader made no page for.

A grade is complete when no written answer (nor any other cell) still awaits a TA in formgrader
(``autograder.export.pending_points``). By default a student whose grade is not complete gets no page (an older page
of theirs is removed, so that nothing incomplete is released); the TA is told who and how many points remain. With
``provisional=True`` they get a page that says at its top "provisional: N points still to be graded by hand".

Before the pages are made the late policy is applied again on the current scores (``autograder.late``), manual ones
included, and the grader's summary at the top of each page is rebuilt from the student's record as it now stands
(an extension granted after grading shows).
"""

from __future__ import annotations

import shutil

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.course import Course, nbgrader_config
from autograder.late import apply_penalties, read_policy
from autograder.leaks import hidden_in_instructor_cells
from autograder.records import GradingRecord, RecordStore

SUMMARY_HEADING = "**Grader's summary**"  # the first words of ``autograder.rendering.GraderSummary``'s cell


def provisional_notice(points: float) -> str:
    """The words a provisional page (and the export) carries."""
    return f"provisional: {points:g} points still to be graded by hand"


class FeedbackNotice(NbGraderPreprocessor):
    """Runs in ``GenerateFeedback`` after ``GetGrades``: the grader's summary rebuilt from the student's record as it
    now stands, and on a provisional page a notice above it. Writes nothing to the gradebook."""

    def __init__(self, records: dict[str, GradingRecord], pending: dict[str, float], policy, **kwargs):
        super().__init__(**kwargs)
        self.records, self.pending, self.policy = records, pending, policy

    def __deepcopy__(self, memo):  # traitlets deep-copies configuration values: share the instance
        return self

    def preprocess(self, nb, resources):
        from autograder.rendering import GraderSummary

        student = resources["nbgrader"]["student"]
        record = self.records.get(student)
        if record is not None:
            if nb.cells and nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(SUMMARY_HEADING):
                del nb.cells[0]
            nb, resources = GraderSummary(record, self.policy).preprocess(nb, resources)
        points = self.pending.get(student, 0.0)
        if points:
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(
                f"## {provisional_notice(points).capitalize()}\n\nThis grade is **not final**: the score below leaves "
                f"out {points:g} points of answers a TA has not graded yet."))
        return nb, resources


def feedback(course: Course, assignment: str, log=print, provisional: bool = False) -> int:
    """Writes ``feedback/<student>/<assignment>/*.html`` for every graded student whose grade is complete (and, with
    ``provisional``, for the others too, marked so); returns the number of pages."""
    from autograder.export import pending_points

    store = RecordStore(course, assignment)
    records = {record.student: record for record in store.records()}
    graded = store.students()
    ungraded = sorted(set(course.submitted(assignment)) - set(graded))
    if ungraded:
        log(f"feedback: not graded yet, no feedback for {', '.join(ungraded)} (run `grade {assignment}` first)")
    apply_penalties(course, assignment)  # on the scores as formgrader left them
    records = {record.student: record for record in store.records()}  # with their lateness as it now stands
    pending = {s: p for s, p in pending_points(course, assignment).items() if s in graded and p[0] > 0}
    if pending:
        said = ", ".join(f"{s} ({points:g} points: {', '.join(cells)})" for s, (points, cells) in sorted(pending.items()))
        if provisional:
            log(f"feedback: PROVISIONAL for {len(pending)} student(s) with answers still to grade by hand: {said}")
        else:
            log(f"feedback: no feedback for {len(pending)} student(s) with answers still to grade by hand: {said}; "
                f"grade them in formgrader and run feedback again (or `feedback {assignment} --provisional`)")
            for student in pending:
                stale = course.root / "feedback" / student / assignment
                if stale.is_dir():
                    shutil.rmtree(stale)
                    log(f"feedback: removed {student}'s earlier page (their grade is not complete)")
    to_write = [s for s in graded if provisional or s not in pending]
    failed = _generate(course, assignment, to_write, records,
                       {s: p[0] for s, p in pending.items()} if provisional else {})
    for student, error in failed.items():
        log(f"feedback: nbgrader could not make {student}'s page: {error}")
    folder = course.root / "feedback"
    pages = sorted(p for p in folder.glob(f"*/{assignment}/*.html") if p.parent.parent.name in to_write) \
        if folder.is_dir() else []
    shown = {page: course.root / "autograded" / page.parent.parent.name / assignment / f"{page.stem}.ipynb"
             for page in pages}  # what each page shows
    own = {notebook: course.root / "submitted" / page.parent.parent.name / assignment / notebook.name
           for page, notebook in shown.items()}
    leaks = hidden_in_instructor_cells(list(shown.values()), course.root / "source" / assignment / f"{assignment}.ipynb",
                                       own)
    for page, notebook in shown.items():  # a page with the grader's hidden text is withheld; the others stand
        found = [leak.split(": ", 1)[1] for leak in leaks if leak.startswith(f"{notebook}: ")]
        if found:
            page.unlink()
            log(f"feedback: WITHHELD {page.parent.parent.name}'s page: its instructor's cells hold hidden test code "
                f"the student did not write ({found[0][:80]}); report this as a grader fault, the page is not written")
    pages = [page for page in pages if page.exists()]
    missing = sorted(set(to_write) - {page.parent.parent.name for page in pages} - set(failed))
    if missing:
        log(f"feedback: graded but without a page: {', '.join(missing)} (nbgrader could not render their notebook; "
            "the grader's summary in formgrader says why)")
    log(f"feedback: {len(pages)} page(s) in feedback/*/{assignment}/"
        + (f", {sum(1 for p in pages if p.parent.parent.name in pending)} of them provisional" if provisional else "")
        + ", no hidden test code in them")
    return len(pages)


def _generate(course: Course, assignment: str, students: list[str], records: dict[str, GradingRecord],
              pending: dict[str, float]) -> dict[str, str]:
    """nbgrader's generate_feedback through its API, one student at a time, with ``FeedbackNotice`` after its
    ``GetGrades``; returns the students it failed for, with nbgrader's error."""
    import warnings

    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades
    from sqlalchemy.exc import SAWarning

    config = nbgrader_config(course.root)
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.db_url = course.db_url
    notice = FeedbackNotice(records, pending, read_policy(course.root))
    config.GenerateFeedback.preprocessors = [GetGrades, notice, CSSHTMLHeaderPreprocessor]
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    failed = {}
    for student in students:
        with warnings.catch_warnings():  # nbgrader's API trips SQLAlchemy 2's autoflush warnings (harmless)
            warnings.simplefilter("ignore", SAWarning)
            result = api.generate_feedback(assignment, student, force=True)
        if not result.get("success"):
            failed[student] = (result.get("error") or result.get("log") or "no detail").strip()[-500:]
    return failed
