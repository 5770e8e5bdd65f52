"""A TA's day in formgrader, in headless Chromium (``tests/browser.py``): both assignments, every student by name
with their scores (the roster imported from Canvas), the grader's summary (lateness, flags) where the TA grades, a
manual grade and a comment that survive a reload and a re-grade from the command line.

The class is the concepts assignment's (``tests/classes.py``; no trained reference needed), handed in late on
purpose, with the homework released beside it.

Screenshots of every step: ``<pytest tmp>/test_a_ta_.../shots/``. Run alone:
``.venv/bin/python -m pytest tests/test_browser_ta.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from browser import JupyterLab, browser_page, unavailable_reason
from classes import collect_concepts, expected_concepts_failures, points_without
from conftest import copy_course

pytestmark = pytest.mark.slow
HW = "segmentation_hw"
CONCEPTS = "segmentation_concepts"


@pytest.fixture
def ta_lab(released_concepts, tmp_path):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no browser tests: {reason}")
    from autograder.pipeline import GradeOptions, grade
    from autograder.release import release
    from autograder.roster import import_roster, read_roster
    from classes import write_roster

    course = copy_course(released_concepts, tmp_path / "class" / "course")
    release(course, [HW], validate=False, log=lambda *_: None)  # generate_assignment only: no training
    collect_concepts(course, tmp_path / "concepts.zip")
    import_roster(course.db_url, read_roster(write_roster(tmp_path / "roster.csv")), log=lambda *_: None)
    course.set_duedate(CONCEPTS, "2026-12-01 18:00:00 UTC")  # the class handed in at 20:15: 2 h 15 min late
    grade(course, CONCEPTS, opts=GradeOptions(workers=2), log=lambda *_: None)
    lab = JupyterLab(course.root, env={"SEGMENTATION_COURSE_ROOT": str(course.root),
                                       "SEGMENTATION_GRADEBOOK_URL": course.db_url})
    yield lab, course
    lab.stop()


def _wait_saved(course, student: str, score: float, comment: str, seconds: float = 60.0) -> None:
    """Waits until formgrader's background save of ``q1_answer`` has reached the gradebook."""
    import time

    from nbgrader.api import Gradebook

    deadline = time.monotonic() + seconds
    while True:
        with Gradebook(course.db_url) as gb:
            grade = gb.find_grade("q1_answer", CONCEPTS, CONCEPTS, student)
            saved = gb.find_comment("q1_answer", CONCEPTS, CONCEPTS, student).manual_comment
            if grade.manual_score == score and saved == comment:
                return
        assert time.monotonic() < deadline, f"formgrader did not save: {grade.manual_score!r}, {saved!r}"
        time.sleep(0.3)


def _regrade(course, student: str) -> None:
    env = dict(os.environ, SEGMENTATION_GRADEBOOK_URL=course.db_url)
    proc = subprocess.run([sys.executable, "-m", "autograder", "--course", str(course.root), "grade", CONCEPTS,
                           "--student", student, "--force"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_a_ta_finds_everyone_grades_an_answer_and_the_grade_survives_a_regrade(ta_lab, tmp_path):
    from playwright.sync_api import expect

    lab, course = ta_lab
    with browser_page(tmp_path / "shots") as view:
        page = view.page
        page.goto(lab.url("formgrader"))
        page.locator("td", has_text=CONCEPTS).first.wait_for()
        body = page.locator("body").inner_text()
        assert HW in body and "does not exist" not in body  # both assignments, no exchange banner
        for assignment in (CONCEPTS, HW):  # released (through the LMS, and a copy in the course's exchange)
            status = page.locator("tr", has_text=assignment).first.inner_text()
            assert "released" in status and "draft" not in status, status
        view.shot("assignments")

        page.goto(lab.url("formgrader/manage_students"))
        page.locator("td", has_text="Lovelace, Ada").wait_for()
        students = page.locator("table").inner_text()
        earned = {s: points_without(CONCEPTS, failed) for s, failed in expected_concepts_failures().items()}
        for name, student in (("Lovelace, Ada", "ada"), ("Okafor, Ben", "ben"), ("Lindqvist, Cara", "cara"),
                              ("Raman, Dev", "dev")):  # dev is on the roster and handed in nothing here
            row = page.locator("tr", has_text=name).inner_text()
            assert f"{earned.get(student, 0):g} / " in row, row
        assert "ada@uni.example" in students and "None, None" not in students
        view.shot("students by name")

        page.goto(lab.url(f"formgrader/gradebook/{CONCEPTS}/{CONCEPTS}"))
        page.get_by_text("Show All Names").click()
        row = page.locator("tr", has_text="Lovelace")
        row.wait_for()
        view.shot("submissions with names")
        row.locator("a:visible").first.click()
        page.locator("input#q1_answer").wait_for()
        page.get_by_text("late by 2 h 15 min").first.wait_for()  # the grader's summary, where the TA grades
        # formgrader fills the fields from its API after the page loads; typing before that would be overwritten (a
        # fresh-clone run on a machine loaded three times over lost the score that way)
        page.wait_for_load_state("networkidle")
        page.fill("input#q1_answer", "3")
        page.keyboard.press("Tab")
        page.fill("textarea#q1_answer-comment", "Clear and complete.")
        page.keyboard.press("Tab")
        _wait_saved(course, "ada", 3.0, "Clear and complete.")  # formgrader saves on change, in the background
        page.locator("input#q1_answer").scroll_into_view_if_needed()
        view.shot("manual grade entered")
        url = page.url

        page.reload()
        page.locator("input#q1_answer").wait_for()
        expect(page.locator("input#q1_answer")).to_have_value("3", timeout=30_000)  # filled in by formgrader's script
        expect(page.locator("textarea#q1_answer-comment")).to_have_value("Clear and complete.", timeout=30_000)
        page.locator("input#q1_answer").scroll_into_view_if_needed()
        view.shot("after reload")

        _regrade(course, "ada")  # another TA re-grades from the command line
        page.goto(url)
        page.locator("input#q1_answer").wait_for()
        expect(page.locator("input#q1_answer")).to_have_value("3", timeout=30_000)  # filled in by formgrader's script
        expect(page.locator("textarea#q1_answer-comment")).to_have_value("Clear and complete.", timeout=30_000)
        page.locator("input#q1_answer").scroll_into_view_if_needed()
        view.shot("after the command-line regrade")

        page.goto(lab.url("formgrader/manage_students"))
        row = page.locator("tr", has_text="Lovelace, Ada")
        row.wait_for()
        assert "65 / " in row.inner_text()  # 62 automatic + 3 by hand
        view.shot("the student's total")
