"""Grades released when they are complete (``autograder.feedback``, ``autograder.export``), on the toy course of
``tests/toy.py`` (2 automatic points, written answers q1 of 3 points and q2 of 1): a student with an answered
question no TA has graded gets no feedback page and an empty Canvas cell by default, a page marked provisional and
an exported, counted grade with ``--provisional``, and everything once formgrader has their score. And the Canvas
file never hands a spreadsheet a formula."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from nbgrader.api import Gradebook

from autograder.export import canvas_csv, export, pending_points, spreadsheet_safe
from autograder.feedback import feedback
from conftest import copy_course
from toy import NAME, submit, toy_assignment


@pytest.fixture
def course(released_toy, tmp_path):
    """ada answered q1 (3 points to grade by hand); ben answered nothing (complete: his answers score 0)."""
    from autograder.judge import CheckResult, Verdict
    from autograder.pipeline import Judged, _record
    from autograder.records import RecordStore

    course = copy_course(released_toy, tmp_path / "course")
    spec = toy_assignment(course.root)
    for student, answered in (("ada", ("q1",)), ("ben", ())):
        submit(course, student, answered=answered)
        verdict = Verdict(NAME, checks={"test_double": CheckResult("test_double", "double doubles", 1.0)})
        _record(course, spec, RecordStore(course, NAME), Judged(student, verdict), digest="d")
    return course


def page(course, student: str) -> str | None:
    pages = list((course.root / "feedback" / student / NAME).glob("*.html"))
    return pages[0].read_text() if pages else None


def ta_grades(course, student: str, grade_id: str, score: float) -> None:
    """What formgrader does when a TA scores an answer."""
    with Gradebook(course.db_url) as gb:
        grade = gb.find_grade(grade_id, NAME, NAME, student)
        grade.manual_score, grade.needs_manual_grade = score, False
        gb.db.commit()


def canvas(course) -> pd.DataFrame:
    return pd.read_csv(course.root / "grading" / "export" / "canvas_import.csv", dtype=str).iloc[1:].set_index(
        "SIS Login ID")


def test_the_points_still_to_grade_come_from_the_gradebook(course):
    assert pending_points(course, NAME) == {"ada": (3.0, ["q1"]), "ben": (0.0, [])}


def test_feedback_waits_for_the_ta_by_default_and_says_for_whom(course):
    said = []
    assert feedback(course, NAME, log=said.append) == 1
    assert page(course, "ada") is None and page(course, "ben") is not None
    assert "Provisional" not in page(course, "ben") and "provisional" not in page(course, "ben")
    assert any("no feedback for 1 student(s) with answers still to grade by hand: ada (3 points: q1)" in line
               for line in said), said
    ta_grades(course, "ada", "q1", 2.5)
    assert feedback(course, NAME, log=said.append) == 2
    assert "provisional" not in page(course, "ada").lower()
    assert "Score: 4.5 / 6" in page(course, "ada")


def test_provisional_feedback_is_marked_with_the_points_still_to_grade(course):
    said = []
    assert feedback(course, NAME, log=said.append, provisional=True) == 2
    html = page(course, "ada")
    assert "Provisional: 3 points still to be graded by hand" in html and "not final" in html
    assert "Grader&#39;s summary" in html or "Grader's summary" in html
    assert "provisional" not in page(course, "ben").lower()
    assert any("PROVISIONAL for 1 student(s)" in line for line in said) and "1 of them provisional" in said[-1]
    feedback(course, NAME, log=said.append)  # by default again: the provisional page is withdrawn
    assert page(course, "ada") is None and any("removed ada's earlier page" in line for line in said)


@pytest.mark.slow  # a subprocess or a whole release: the full suite's, not the fast tier's
def test_export_leaves_incomplete_grades_out_of_canvas_unless_provisional(course):
    said = []
    summaries = export(course, [NAME], log=said.append)
    rows = canvas(course)
    assert pd.isna(rows.loc["ada", NAME]) and float(rows.loc["ben", NAME]) == 2.0
    assert any("toy: 1 cell(s) left empty, answers still to grade by hand: ada" in line for line in said), said
    assert summaries[NAME]["provisional"] == 1
    scores = pd.read_csv(course.root / "grading" / "export" / f"{NAME}_scores.csv").set_index("student")
    assert scores.loc["ada", "to_grade"] == 3.0 and bool(scores.loc["ada", "provisional"])
    assert not scores.loc["ben", "provisional"]
    from autograder.nbgrader_export import KEYS  # nbgrader's export went through the course's plugin: it reads back
    assert tuple(pd.read_csv(course.root / "grading" / "export" / "nbgrader_grades.csv").columns) == KEYS
    said.clear()
    export(course, [NAME], log=said.append, provisional=True)
    assert float(canvas(course).loc["ada", NAME]) == 2.0
    assert any("toy: 1 PROVISIONAL grade(s) exported, answers still to grade by hand: ada" in line for line in said)
    ta_grades(course, "ada", "q1", 3.0)
    said.clear()
    export(course, [NAME], log=said.append)
    assert float(canvas(course).loc["ada", NAME]) == 5.0 and not any("left empty" in line for line in said)


@pytest.mark.slow  # a subprocess or a whole release: the full suite's, not the fast tier's
def test_the_cli_takes_provisional(course, capsys):
    from autograder.cli import main

    assert main(["--course", str(course.root), "export", NAME, "--provisional"]) == 0
    assert "1 PROVISIONAL grade(s) exported" in capsys.readouterr().out
    assert main(["--course", str(course.root), "feedback", NAME]) == 0
    assert "no feedback for 1 student(s)" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tx"])
def test_names_that_start_like_a_formula_are_written_as_text(tmp_path, name):
    from autograder.roster import Person

    table = pd.DataFrame({"student": ["ada"], "total": [1.0], "max": [2.0], "provisional": [False]})
    canvas_csv({"hw": table}, tmp_path / "c.csv", {"ada": Person("ada", first_name="A", last_name=name,
                                                                    lms_user_id="7")})
    written = pd.read_csv(tmp_path / "c.csv", dtype=str, keep_default_na=False).iloc[1]
    assert written["Student"] == f"'{name}, A" and written["ID"] == "7"
    assert spreadsheet_safe("Lovelace, Ada") == "Lovelace, Ada" and spreadsheet_safe(3.5) == 3.5


def test_nbgraders_own_export_is_quoted_and_formula_safe(tmp_path):
    """``nbgrader export`` through the course's plugin (``SafeCsvExport``): a name with commas stays in its column and
    a name that starts like a formula is text (round 5: nbgrader's plugin joined fields unquoted, so a display name
    forged the score columns as 45/45/45 and pandas could not read the file)."""
    import warnings

    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    from autograder.course import nbgrader_config
    from autograder.nbgrader_export import KEYS, SafeCsvExport

    repo = Path(__file__).resolve().parents[1]
    assert nbgrader_config(repo).ExportApp.plugin_class == "autograder.nbgrader_export.SafeCsvExport"
    forged = "Kowalczyk, Fay,fay@uni.example,45.0,0.0,45.0,45.0"
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        gb.add_assignment("hw")
        gb.add_student("dev", first_name="=cmd|' /C calc'!A0", last_name="Dev", email="dev@uni.example")
        gb.add_student("fay", first_name="Fay", last_name=forged, email="fay@uni.example")
        with warnings.catch_warnings():  # nbgrader's API trips SQLAlchemy 2's autoflush warnings (harmless)
            warnings.simplefilter("ignore", SAWarning)
            gb.add_submission("hw", "fay")
        SafeCsvExport(to=str(tmp_path / "grades.csv")).export(gb)
    written = pd.read_csv(tmp_path / "grades.csv", dtype=str, keep_default_na=False)
    assert tuple(written.columns) == KEYS
    table = written.set_index("student_id")
    assert table.loc["dev", "first_name"] == "'=cmd|' /C calc'!A0" and table.loc["fay", "last_name"] == forged
    assert table.loc["fay", "score"] == "0.0" and table.loc["fay", "max_score"] == "0.0" and len(table) == 2
