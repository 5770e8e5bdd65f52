"""Our nbgrader extensions on a small fixture (the toy course of ``tests/toy.py``): ``autograder.rendering``'s
preprocessors and what they rely on in nbgrader, so that an nbgrader release that changes any of it fails here
instead of in a term.

Pinned: nbgrader's autograde runs preprocessor instances we hand it, after ``OverwriteCells`` restored the
instructor's cells and with ``ClearHiddenTests`` using the course's delimiters; without ``SaveAutoGrades`` it writes
no score (the record store is the only writer); our written-answer rule is ``SaveAutoGrades``'s own; nbgrader stops
on a ``timestamp.txt`` that is not a time (so the pipeline reads it first) and reads ``submitted/`` from where the
configuration says.
"""

from __future__ import annotations

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.errors import GraderError
from autograder.judge import CheckResult, Verdict
from autograder.late import with_lateness
from autograder.records import RecordStore, after_rendering, build_record
from autograder.rendering import render_submission
from conftest import copy_course
from toy import NAME, NOTEBOOK, TEST, submit, toy_assignment


@pytest.fixture
def course(released_toy, tmp_path):
    return copy_course(released_toy, tmp_path / "course")


def record_of(course, student, fraction=1.0, message="double doubles"):
    spec = toy_assignment(course.root)
    verdict = Verdict(NAME, checks={"test_double": CheckResult("test_double", message, fraction)})
    return spec, build_record(spec, student, verdict, digest="d")


def grades(course, student) -> dict:
    with Gradebook(course.db_url) as gb:
        nb = gb.find_submission_notebook(NAME, NAME, student)
        scores = {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades}
        comments = {c.name: c.auto_comment for c in nb.comments}
    return {"scores": scores, "comments": comments}


def rendered(course, student):
    return nbformat.read(course.root / "autograded" / student / NAME / NOTEBOOK, as_version=4)


def test_rendering_writes_the_records_lines_restores_the_instructors_cells_and_no_score(course):
    folder = submit(course, "ada")
    nb = nbformat.read(folder / NOTEBOOK, as_version=4)
    test_cell = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "test_double")
    test_cell.source = "pass  # the student emptied the test"
    test_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="all tests passed!\n")]
    nbformat.write(nb, folder / NOTEBOOK)
    _, record = record_of(course, "ada")
    rendering = render_submission(course, record)
    assert rendering.error is None
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in rendered(course, "ada").cells}
    test = cells["test_double"]
    assert test.source.strip() == TEST.split("### BEGIN HIDDEN TESTS")[0].strip()  # restored, hidden test removed
    assert [o["text"] for o in test.outputs] == ["[grader] test_double: PASSED (2/2 points) - double doubles\n"]
    summary = cells[None].source
    assert summary.startswith("**Grader's summary** (automatic points 2 of 2; status: graded)")
    assert "submitted: time unknown" in summary
    assert {(w.grade_id, w.max_points, w.answered) for w in rendering.written} == {("q1", 3.0, True),
                                                                                    ("q2", 1.0, False)}
    assert all(score is None for score, _ in grades(course, "ada")["scores"].values()), "nbgrader wrote a score"


@pytest.mark.parametrize("points, grade_id, extra", [("ten", None, {}), (float("nan"), None, {}), (True, None, {}),
                                                    (None, ["x"], {}), (None, None, {"schema_version": "3"}),
                                                    (None, None, {"locked": "yes", "grade": 1})])
def test_metadata_the_student_made_up_is_restored_and_rendered(course, points, grade_id, extra):
    """Round 5: ``"points": "ten"`` on the locked test cell made nbgrader's autograde fail on ``float("ten")`` (the raw
    notebook was shown, without the grader's summary). Points that are not a number, or a grade id that is not text,
    are made plain first; ``OverwriteCells`` restores the release's values and the notebook renders."""
    folder = submit(course, "ada")
    nb = nbformat.read(folder / NOTEBOOK, as_version=4)
    test_cell = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "test_double")
    if points is not None:
        test_cell.metadata["nbgrader"]["points"] = points
    if extra:  # round 6: a cell of the student's own with a valid new id and made-up fields
        nb.cells.append(nbformat.v4.new_code_cell("y = 2", metadata={"nbgrader": {
            "grade_id": "mine", "grade": False, "solution": False, "locked": False, "schema_version": 3, **extra}}))
    if grade_id is not None:
        next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "q2").metadata["nbgrader"][
            "grade_id"] = grade_id
    (folder / NOTEBOOK).write_text(nbformat.writes(nb, version=4))
    _, record = record_of(course, "ada")
    rendering = render_submission(course, record)
    assert rendering.error is None, rendering.error
    cells = rendered(course, "ada").cells
    ids = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in cells}
    assert ids["test_double"].metadata["nbgrader"]["points"] == 2.0
    assert any(c.source.startswith("**Grader's summary**") for c in cells)


def test_the_stores_written_answer_rule_is_nbgraders_own(course, tmp_path):
    """``RecordStore.save`` on one copy, nbgrader's stock ``SaveAutoGrades`` on another, the same rendered notebook:
    the written answers get the same scores, review flags and comments."""
    from nbgrader.preprocessors import SaveAutoGrades

    submit(course, "ada")
    spec, record = record_of(course, "ada")
    rendering = render_submission(course, record)
    stock = copy_course(course.root, tmp_path / "stock")
    RecordStore(course, NAME).save(after_rendering(record, rendering.written, None, rendering.seconds), spec.notebook)
    resources = {"nbgrader": {"notebook": NAME, "assignment": NAME, "student": "ada", "db_url": stock.db_url}}
    SaveAutoGrades().preprocess(rendered(stock, "ada"), resources)
    ours, theirs = grades(course, "ada"), grades(stock, "ada")
    for answer in ("q1", "q2"):
        assert ours["scores"][answer] == theirs["scores"][answer], answer
        assert ours["comments"][answer] == theirs["comments"][answer], answer
    assert ours["scores"]["q1"] == (None, True) and ours["scores"]["q2"] == (0.0, False)
    assert ours["comments"]["q2"] == "No response."
    assert ours["scores"]["test_double"] == (2.0, False)  # the record's points, not the executed outputs' rule


def test_a_partial_check_is_written_with_its_points_and_the_notebook_flagged(course):
    submit(course, "ben")
    spec, record = record_of(course, "ben", fraction=0.5, message="half of it")
    rendering = render_submission(course, record)
    RecordStore(course, NAME).save(after_rendering(record, rendering.written, "a problem", rendering.seconds),
                                   spec.notebook)
    assert grades(course, "ben")["scores"]["test_double"] == (1.0, False)
    with Gradebook(course.db_url) as gb:
        assert gb.find_submission_notebook(NAME, NAME, "ben").flagged


def test_nbgrader_stops_on_a_timestamp_that_is_not_a_time_and_we_render_without_it(course):
    folder = submit(course, "cara", timestamp="last tuesday, after lunch")
    _, record = record_of(course, "cara")
    stopped = render_submission(course, record)
    assert stopped.error is not None and "last tuesday, after lunch" in stopped.error  # nbgrader stops: pinned
    rendering = render_submission(course, record, without_timestamp=True)
    assert rendering.error is None and (course.root / "autograded" / "cara" / NAME / NOTEBOOK).is_file()
    assert (folder / "timestamp.txt").read_text() == "last tuesday, after lunch"  # the submission is untouched


def test_nbgrader_records_a_good_timestamp_and_the_summary_shows_the_lateness(course):
    from autograder.pipeline import read_timestamp

    course.set_duedate(NAME, "2026-12-01 18:00:00 UTC")
    folder = submit(course, "dev", timestamp="2026-12-01 20:15:00 UTC")
    when, problem = read_timestamp(folder)
    assert problem is None
    spec, record = record_of(course, "dev")
    record = with_lateness(course, build_record(spec, "dev", Verdict(NAME, checks={
        "test_double": CheckResult("test_double", "ok", 1.0)}), digest="d", submitted_at=when))
    assert render_submission(course, record).error is None
    summary = rendered(course, "dev").cells[0].source
    assert "- submitted: 2026-12-01 20:15 UTC" in summary and "**late by 2 h 15 min**" in summary
    with Gradebook(course.db_url) as gb:
        assert gb.find_submission(NAME, "dev").total_seconds_late == 2 * 3600 + 15 * 60


def test_a_gradebook_that_disagrees_with_the_declaration_is_refused(course):
    from dataclasses import replace

    spec = replace(toy_assignment(course.root), points={"test_double": 3})
    with pytest.raises(GraderError, match=r"test_double: the gradebook 2.0, the declaration 3"):
        RecordStore(course, NAME).check_points(spec)
    RecordStore(course, NAME).check_points(toy_assignment(course.root))  # the toy's own declaration agrees
