"""The TA pipeline end to end on the simulated class: LMS zip → collect → grade (parallel) → feedback → export.

Expectations are the checks each student fails (``tests/classes.py``); points follow from the declaration.
"""

from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbgrader.api import Gradebook

from autograder.checks import get_assignment
from autograder.export import export
from autograder.pipeline import GradeOptions, grade
from autograder.records import RecordStore
from classes import (ASSIGNMENT, CANVAS_IDS, CONCEPTS, STUDENTS, ben_tiers, expected_concepts_failures,
                     expected_failures, points_without)
from conftest import copy_course
from course_lib.train.recipes import MIOU_TIERS

pytestmark = pytest.mark.slow


def manual_points(course, assignment: str) -> float:
    """The points of the answers a TA grades, as the source notebook's nbgrader metadata gives them."""
    nb = nbformat.read(course.root / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    return sum(float(c.metadata["nbgrader"].get("points", 0)) for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade") and c.metadata["nbgrader"].get("solution"))


def test_collect_matches_every_student_and_reports_the_stray_file(graded_class):
    _, info = graded_class
    report = info["collect"]
    assert report["students"] == sorted(STUDENTS)
    assert report["unmatched"] == ["readme_from_lms.txt"]
    assert report["marked_late_by_lms"] == ["eli"] and report["timestamps"] == 6


def test_each_student_fails_exactly_the_expected_checks_and_gets_their_points(graded_class):
    course, info = graded_class
    expected = expected_failures(course)
    assert {s: r.failed for s, r in info["records"].items()} == expected
    assert {s: r.auto_points for s, r in info["records"].items()} == {
        s: points_without(ASSIGNMENT, failed) for s, failed in expected.items()}
    declared = sum(get_assignment(ASSIGNMENT).points.values())
    assert all(r.auto_max == declared for r in info["records"].values())


def test_reference_passes_every_check_with_a_recomputed_miou(graded_class):
    _, info = graded_class
    ada = info["records"]["ada"]
    assert ada.failed == set() and ada.problems == () and ada.flags == ()
    assert ada.miou.public >= 0.35 and abs(ada.miou.public - ada.miou.heldout) < 0.08
    block = ada.check("test_residual_block")
    assert [p.name for p in block.parts] == ["shapes", "shortcut", "identity path", "gradient", "specification"]
    assert sum(p.points for p in block.parts) == block.points == block.max_points


def test_failing_and_incomplete_students_get_a_clear_reason(graded_class):
    course, info = graded_class
    records = info["records"]
    assert "no checkpoint" in "; ".join(records["fay"].problems)
    dev_model = records["dev"].check("test_segmentation_model").message
    assert "SegmentationModel is not defined" in dev_model and "RuntimeError: I ran out of time" in dev_model
    if "target" not in ben_tiers(course):
        assert "below 0.15" in records["ben"].check("test_miou_target").message
    assert "below 0.35" in records["ben"].check("test_miou_excellent").message
    assert "still the placeholder" in records["cara"].check("test_answers_complete").message
    assert records["cara"].status == "graded"  # the untouched release runs to the end


def test_the_records_are_the_store_and_the_store_the_gradebook(graded_class):
    """What ``grade`` returned is what the store holds, and the gradebook's automatic scores are the records'."""
    course, info = graded_class
    store = RecordStore(course, ASSIGNMENT)
    assert {r.student: r for r in store.records()} == info["records"]
    with Gradebook(course.db_url) as gb:
        for student, record in info["records"].items():
            for check in record.checks:
                assert gb.find_grade(check.grade_id, ASSIGNMENT, ASSIGNMENT, student).auto_score == check.points
            assert gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).flagged == record.flagged
        written = {w.grade_id: w for w in info["records"]["ada"].written}
        assert written and all(w.answered for w in written.values())
        assert all(not w.answered for w in info["records"]["cara"].written)  # "No response.", 0, no TA needed
        cara = gb.find_grade(next(iter(written)), ASSIGNMENT, ASSIGNMENT, "cara")
        assert cara.auto_score == 0 and not cara.needs_manual_grade


def test_export_tables_lateness_and_canvas_file(graded_class):
    course, info = graded_class
    out = course.root / "grading" / "export"
    table = pd.read_csv(out / f"{ASSIGNMENT}_scores.csv").set_index("student")
    points = get_assignment(ASSIGNMENT).points
    assert table.loc["eli", "late_seconds"] > 0 and (table.drop("eli")["late_seconds"] == 0).all()
    assert table.loc["ada", "test_miou_excellent"] == points["test_miou_excellent"]
    assert table.loc["ben", "test_miou_target"] == (points["test_miou_target"] if "target" in ben_tiers(course) else 0)
    assert table.loc["ada", "max"] == sum(points.values()) + manual_points(course, ASSIGNMENT)
    assert "no checkpoint" in table.loc["fay", "problems"]
    summary = info["summaries"][ASSIGNMENT]
    reached = ben_tiers(course)
    assert summary["tier_counts"] == {f"tier {t:g}": 2 + (name in reached) for name, t in MIOU_TIERS.items()}
    assert summary["late"] == 1
    canvas = pd.read_csv(out / "canvas_import.csv")
    assert list(canvas.columns[:5]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas.iloc[0]["Student"].strip() == "Points Possible" and len(canvas) == len(STUDENTS) + 1
    rows = canvas.iloc[1:].set_index("SIS Login ID")  # Canvas matches on ID: the user ids of the export's file names
    assert rows.loc["ada", "Student"] == "Lovelace, Ada" and int(rows.loc["ada", "ID"]) == CANVAS_IDS["ada"][0]
    assert {int(rows.loc[s, "ID"]) for s in rows.index} == {user for user, _ in CANVAS_IDS.values()}
    assert (out / f"{ASSIGNMENT}_histogram.png").stat().st_size > 5000 and (out / "nbgrader_grades.csv").is_file()


def test_feedback_shows_check_messages_but_no_hidden_code(graded_class):
    course, info = graded_class
    assert info["pages"] == len(STUDENTS)
    html = next((course.root / "feedback" / "ben" / ASSIGNMENT).glob("*.html")).read_text()
    assert "BEGIN HIDDEN TESTS" not in html
    tier = info["records"]["ben"].check("test_miou_target")
    assert html.count(f"test_miou_target: {tier.outcome} ({tier.points:g}/{tier.max_points:g} points)") == 1, \
        "each check's name, points and message appear exactly once"
    block = info["records"]["ben"].check("test_residual_block")
    assert html.count(f"test_residual_block: PASSED ({block.max_points:g}/{block.max_points:g} points)") == 1
    # where the TA grades (the autograded notebook formgrader shows) and in feedback: lateness and flags' reasons
    autograded = lambda s: nbformat.read(course.root / "autograded" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    eli, fay = autograded("eli").cells[0].source, autograded("fay").cells[0].source
    assert eli.startswith("**Grader's summary**") and "**late by 21 h 1 min**" in eli and "flagged" not in eli
    assert "- no checkpoint: segmentation_hw_checkpoint.pt is missing from the submission" in fay
    assert "late by" in next((course.root / "feedback" / "eli" / ASSIGNMENT).glob("*.html")).read_text()


def test_regrade_and_reexport_change_nothing_and_keep_manual_grades(graded_class, tmp_path):
    course = copy_course(graded_class[0].root, tmp_path / "course")
    with Gradebook(course.db_url) as gb:  # a TA grades an answer in formgrader
        grade_row = gb.find_grade("q4_architecture", ASSIGNMENT, ASSIGNMENT, "ada")
        grade_row.manual_score = 3.5
        gb.db.commit()
    export(course, [ASSIGNMENT], log=lambda *_: None)
    out = course.root / "grading" / "export"
    before = {p.name: p.read_bytes() for p in out.glob("*.csv")} | {p.name: p.read_bytes() for p in out.glob("*.json")}
    skipped = grade(course, ASSIGNMENT, opts=GradeOptions(workers=2))  # nothing changed: every student skipped
    assert {r.student for r in skipped} == set(STUDENTS)
    grade(course, ASSIGNMENT, ["ada", "cara"], GradeOptions(workers=2, force=True))  # forced: recomputed
    export(course, [ASSIGNMENT], log=lambda *_: None)
    after = {p.name: p.read_bytes() for p in out.glob("*.csv")} | {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert after == before
    table = pd.read_csv(out / f"{ASSIGNMENT}_scores.csv").set_index("student")
    assert table.loc["ada", "q4_architecture"] == 3.5
    assert table.loc["ada", "total"] == points_without(ASSIGNMENT, set()) + 3.5
    with Gradebook(course.db_url) as gb:
        assert len(gb.find_assignment(ASSIGNMENT).submissions) == len(STUDENTS)


def test_summary_prints_from_the_gradebook_and_writes_nothing(graded_class, tmp_path, capsys):
    from autograder.cli import main

    course = copy_course(graded_class[0].root, tmp_path / "course")
    out = course.root / "grading" / "export"
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["--course", str(course.root), "summary", ASSIGNMENT]) == 0
    printed = capsys.readouterr().out
    assert f"{ASSIGNMENT}: {len(STUDENTS)} submitted of {len(STUDENTS)} students" in printed
    assert "no checkpoint" in printed
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_assignment_two_is_graded_end_to_end(graded_class):
    course, info = graded_class
    expected = expected_concepts_failures()
    assert {s: r.failed for s, r in info["concepts"].items()} == expected
    assert {s: r.auto_points for s, r in info["concepts"].items()} == {
        s: points_without(CONCEPTS, failed) for s, failed in expected.items()}
    assert info["concept_pages"] == len(expected)
    table = pd.read_csv(course.root / "grading" / "export" / f"{CONCEPTS}_scores.csv").set_index("student")
    assert table.loc["ada", "test_t10_segformer"] == get_assignment(CONCEPTS).points["test_t10_segformer"]
    assert table.loc["ben", "test_t6_metrics"] == 0.0
    canvas = pd.read_csv(course.root / "grading" / "export" / "canvas_import.csv")
    assert {ASSIGNMENT, CONCEPTS} <= set(canvas.columns)


def test_an_interrupted_run_resumes_without_duplicates_or_lost_manual_grades(graded_class, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    course = copy_course(graded_class[0].root, tmp_path / "course")
    store = RecordStore(course, ASSIGNMENT)
    for student in store.students():  # as if never graded
        store.discard(student)
    with Gradebook(course.db_url) as gb:
        gb.find_grade("q5_backprop", ASSIGNMENT, ASSIGNMENT, "ben").manual_score = 2.0
        gb.db.commit()
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "--course", str(course.root), "grade", ASSIGNMENT,
                             "--workers", "2"], cwd=repo, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and len(store.students()) < 2:
        time.sleep(0.5)
    assert proc.poll() is None, "the grading run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # the TA's laptop dies mid-run
    proc.wait()
    assert 2 <= len(store.students()) < len(STUDENTS)
    records = grade(course, ASSIGNMENT, opts=GradeOptions(workers=2))
    assert {r.student: r.failed for r in records} == expected_failures(course)
    assert len(store.students()) == len(STUDENTS)
    with Gradebook(course.db_url) as gb:
        assert len(gb.find_assignment(ASSIGNMENT).submissions) == len(STUDENTS)
        assert gb.find_grade("q5_backprop", ASSIGNMENT, ASSIGNMENT, "ben").manual_score == 2.0
