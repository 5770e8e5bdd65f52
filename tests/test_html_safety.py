"""No script a student writes runs in a TA's or a student's browser: their Markdown answers, their code's outputs and
what the grader quotes of their code (a stderr line in the grader's summary) are sanitised in the feedback page and
in formgrader's submission view (``autograder/sanitize.py``, registered in ``nbgrader_config.py``).

The class is the concepts assignment's (``tests/classes.py``: no trained reference); ``mallory`` hands in ada's
answers with a ``<script>`` and an ``<img onerror>`` in every written answer, a saved output that carries HTML,
JavaScript and SVG, and a code cell whose stderr carries a script before it ends the grading process. Chromium opens
both pages and proves that nothing ran (the page's title and ``window.pwned`` untouched) while the answers are shown.
"""

from __future__ import annotations

import shutil
from html.parser import HTMLParser

import nbformat
import pytest

from browser import JupyterLab, browser_page, unavailable_reason
from classes import concepts_class

pytestmark = pytest.mark.slow
CONCEPTS = "segmentation_concepts"
MARK = "PWNED-BY-STUDENT"
SCRIPT = (f'<script>document.title = "{MARK}"; window.pwned = 1;</script>'
          f'<img src="x" onerror="document.title = \'{MARK}\'; window.pwned = 2;">')
STDERR_SCRIPT = ("import os\nos.write(2, b'<img src=x onerror=\"document.title=\\'" + MARK +
                 "\\'; window.pwned=3\">')\nos._exit(3)\n")


@pytest.fixture(scope="module")
def mallory_class(tmp_path_factory):
    from autograder.feedback import feedback
    from autograder.pipeline import GradeOptions, grade
    from autograder.sandbox import jail_supported

    course = concepts_class(tmp_path_factory.mktemp("html"))
    folder = course.root / "submitted" / "mallory" / CONCEPTS
    shutil.copytree(course.root / "submitted" / "ada" / CONCEPTS, folder)
    path = folder / f"{CONCEPTS}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution"):
            cell.source += "\n\n" + SCRIPT
        if meta.get("grade_id") == "t10_segformer":
            cell.source = STDERR_SCRIPT + cell.source
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    first_code.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": f"<b>saved output</b>{SCRIPT}", "application/javascript": f"document.title = '{MARK}';",
        "image/svg+xml": f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"document.title='{MARK}'\"></svg>",
        "text/plain": "saved output"})]
    nbformat.write(nb, path)
    results = {r.student: r for r in grade(course, CONCEPTS, opts=GradeOptions(workers=2, unsafe=not jail_supported()),
                                            log=lambda *_: None)}
    feedback(course, CONCEPTS, log=lambda *_: None, provisional=True)  # written answers stay ungraded here
    return course, results


class LiveMarkup(HTMLParser):
    """The elements of a page that could run something: event-handler attributes, scripts, SVG, embedded frames."""

    def __init__(self):
        super().__init__()
        self.found, self._in_script = [], False

    def handle_starttag(self, tag, attrs):
        self.found += [f"<{tag} {name}=...>" for name, _ in attrs if name.startswith("on")]
        if tag in ("svg", "iframe", "object", "embed"):
            self.found.append(f"<{tag}>")
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and MARK in data:
            self.found.append(f"<script>{data[:60]}")


def test_the_grader_quotes_the_students_stderr_and_the_pages_hold_no_live_markup(mallory_class):
    course, results = mallory_class
    assert any(MARK in problem for problem in results["mallory"].notes)  # the quote the summary shows
    page = (course.root / "feedback" / "mallory" / CONCEPTS / f"{CONCEPTS}.html").read_text()
    assert "&lt;script&gt;document.title" in page  # the answer is shown, as text
    parser = LiveMarkup()
    parser.feed(page)
    assert parser.found == []
    assert "saved output" in page and f"document.title = '{MARK}';" not in page  # the JavaScript output is gone


def _untouched(page) -> None:
    assert page.title() != MARK
    assert page.evaluate("window.pwned") is None


def test_no_script_runs_in_the_feedback_page_or_in_formgrader(mallory_class, tmp_path):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no browser tests: {reason}")
    from nbgrader.api import Gradebook

    course, _ = mallory_class
    with browser_page(tmp_path / "shots") as view:
        page = view.page
        page.goto((course.root / "feedback" / "mallory" / CONCEPTS / f"{CONCEPTS}.html").as_uri())
        page.wait_for_load_state("load")
        page.get_by_text("document.title").first.wait_for()  # the answers are there, shown as text
        view.shot("feedback")
        _untouched(page)
        with Gradebook(course.db_url) as gb:
            notebook_id = gb.find_submission_notebook(CONCEPTS, CONCEPTS, "mallory").id
        lab = JupyterLab(course.root, env={"SEGMENTATION_COURSE_ROOT": str(course.root),
                                           "SEGMENTATION_GRADEBOOK_URL": course.db_url})
        try:
            page.goto(lab.url(f"formgrader/submissions/{notebook_id}/"))
            page.get_by_text("document.title").first.wait_for()
            page.wait_for_load_state("networkidle")
            view.shot("formgrader")
            _untouched(page)
        finally:
            lab.stop()
