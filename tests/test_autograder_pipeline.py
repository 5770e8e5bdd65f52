"""The TA pipeline end to end on the simulated class: LMS zip → collect → grade (parallel) → feedback → export."""

import json
from pathlib import Path

import pandas as pd
import pytest
from nbgrader.api import Gradebook

from autograder.demo import ASSIGNMENT, CANVAS_IDS, EXPECTED_POINTS, ben_tiers, expected_points
from autograder.export import export
from autograder.pipeline import GradeOptions, grade
from course_lib.train.recipes import MIOU_TIERS

pytestmark = pytest.mark.slow

EXPECTED = EXPECTED_POINTS


def test_collect_matches_every_student_and_reports_the_stray_file(graded_class):
    _, info = graded_class
    report = info["collect"]
    assert report["students"] == sorted(EXPECTED)
    assert report["unmatched"] == ["readme_from_lms.txt"]
    assert report["marked_late_by_lms"] == ["eli"] and report["timestamps"] == 6


def test_each_student_gets_exactly_the_expected_automatic_points(graded_class):
    course, info = graded_class
    assert {s: r["auto_points"] for s, r in info["results"].items()} == expected_points(course)
    assert all(r["auto_max"] == 45.0 for r in info["results"].values())


def test_reference_passes_every_check_with_a_recomputed_miou(graded_class):
    _, info = graded_class
    ada = info["results"]["ada"]
    assert all(c["passed"] for c in ada["checks"].values()) and ada["problems"] == []
    assert ada["miou"]["public"] >= 0.35 and abs(ada["miou"]["public"] - ada["miou"]["heldout"]) < 0.08


def test_failing_and_incomplete_students_get_a_clear_reason(graded_class):
    course, info = graded_class
    results = info["results"]
    assert "no checkpoint" in "; ".join(results["fay"]["problems"])
    assert "SegmentationModel is not defined" in results["dev"]["checks"]["test_segmentation_model"]["message"]
    assert "RuntimeError: I ran out of time" in results["dev"]["checks"]["test_segmentation_model"]["message"]
    if "target" not in ben_tiers(course):
        assert "below 0.15" in results["ben"]["checks"]["test_miou_target"]["message"]
    assert "below 0.35" in results["ben"]["checks"]["test_miou_excellent"]["message"]
    assert "still the placeholder" in results["cara"]["checks"]["test_answers_complete"]["message"]
    assert results["cara"]["status"] == "graded"  # the untouched release runs to the end


def test_export_tables_lateness_and_canvas_file(graded_class):
    course, info = graded_class
    out = course.root / "grading" / "export"
    table = pd.read_csv(out / f"{ASSIGNMENT}_scores.csv").set_index("student")
    assert table.loc["eli", "late_seconds"] > 0 and (table.drop("eli")["late_seconds"] == 0).all()
    assert table.loc["ada", "test_miou_excellent"] == 5.0
    assert table.loc["ben", "test_miou_target"] == (5.0 if "target" in ben_tiers(course) else 0.0)
    assert table.loc["ada", "max"] == 85.0  # 45 automatic + 40 manual
    summary = info["summaries"][ASSIGNMENT]
    reached = ben_tiers(course)
    assert summary["tier_counts"] == {f"tier {t:g}": 2 + (name in reached) for name, t in MIOU_TIERS.items()}
    assert summary["late"] == 1
    canvas = pd.read_csv(out / "canvas_import.csv")
    assert list(canvas.columns[:5]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas.iloc[0]["Student"].strip() == "Points Possible" and len(canvas) == 7  # 6 students + possible
    rows = canvas.iloc[1:].set_index("SIS Login ID")  # Canvas matches on ID: the user ids of the export's file names
    assert rows.loc["ada", "Student"] == "Lovelace, Ada" and int(rows.loc["ada", "ID"]) == CANVAS_IDS["ada"][0]
    assert {int(rows.loc[s, "ID"]) for s in rows.index} == {user for user, _ in CANVAS_IDS.values()}
    assert (out / f"{ASSIGNMENT}_histogram.png").stat().st_size > 5000 and (out / "nbgrader_grades.csv").is_file()


def test_feedback_shows_check_messages_but_no_hidden_code(graded_class):
    course, info = graded_class
    assert info["pages"] == 6
    html = next((course.root / "feedback" / "ben" / ASSIGNMENT).glob("*.html")).read_text()
    assert "BEGIN HIDDEN TESTS" not in html
    line = "test_miou_target: FAILED (0/5 points)" if "target" not in ben_tiers(course) else "test_miou_target: PASSED (5/5 points)"
    assert html.count(line) == 1, "each check's name, points and message appear exactly once"
    assert html.count("test_residual_block: PASSED (10/10 points)") == 1
    # where the TA grades (the autograded notebook formgrader shows) and in feedback: lateness and flags' reasons
    import nbformat

    autograded = lambda s: nbformat.read(course.root / "autograded" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    eli, fay = autograded("eli").cells[0].source, autograded("fay").cells[0].source
    assert eli.startswith("**Grader's summary**") and "**late by 21 h 1 min**" in eli and "flagged" not in eli
    assert "- flagged: no checkpoint: segmentation_hw_checkpoint.pt is missing from the submission" in fay
    assert "late by" in next((course.root / "feedback" / "eli" / ASSIGNMENT).glob("*.html")).read_text()


def test_regrade_and_reexport_change_nothing_and_keep_manual_grades(graded_class):
    course, _ = graded_class
    with Gradebook(course.db_url) as gb:  # a TA grades an answer in formgrader
        grade_row = gb.find_grade("q4_architecture", ASSIGNMENT, ASSIGNMENT, "ada")
        grade_row.manual_score = 3.5
        gb.db.commit()
    export(course, [ASSIGNMENT])
    out = course.root / "grading" / "export"
    before = {p.name: p.read_bytes() for p in out.glob("*.csv")} | {p.name: p.read_bytes() for p in out.glob("*.json")}
    skipped = grade(course, ASSIGNMENT, opts=GradeOptions(workers=2))  # nothing changed: every student skipped
    assert {r["student"] for r in skipped} == set(EXPECTED)
    grade(course, ASSIGNMENT, ["ada", "cara"], GradeOptions(workers=2, force=True))  # forced: recomputed
    export(course, [ASSIGNMENT])
    after = {p.name: p.read_bytes() for p in out.glob("*.csv")} | {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert after == before
    table = pd.read_csv(out / f"{ASSIGNMENT}_scores.csv").set_index("student")
    assert table.loc["ada", "q4_architecture"] == 3.5 and table.loc["ada", "total"] == 48.5
    with Gradebook(course.db_url) as gb:
        assert len(gb.find_assignment(ASSIGNMENT).submissions) == 6


def test_results_are_structured_json(graded_class):
    course, _ = graded_class
    data = json.loads((course.results_dir(ASSIGNMENT) / "dev.json").read_text())
    assert set(data) >= {"student", "status", "problems", "checks", "auto_points", "auto_max", "miou", "submission_hash"}


def test_assignment_two_is_graded_end_to_end(graded_class):
    course, info = graded_class
    assert {s: r["auto_points"] for s, r in info["concepts"].items()} == {"ada": 62.0, "ben": 32.0, "cara": 0.0}
    assert info["concept_pages"] == 3
    table = pd.read_csv(course.root / "grading" / "export" / "segmentation_concepts_scores.csv").set_index("student")
    assert table.loc["ada", "test_t10_segformer"] == 6.0 and table.loc["ben", "test_t6_metrics"] == 0.0
    canvas = pd.read_csv(course.root / "grading" / "export" / "canvas_import.csv")
    assert {"segmentation_hw", "segmentation_concepts"} <= set(canvas.columns)


def test_an_interrupted_run_resumes_without_duplicates_or_lost_manual_grades(graded_class, tmp_path):
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from autograder.course import Course

    source, _ = graded_class
    course = Course(tmp_path / "course")
    shutil.copytree(source.root, course.root)
    shutil.rmtree(course.root / "grading" / ASSIGNMENT)  # as if never graded
    with Gradebook(course.db_url) as gb:
        gb.find_grade("q5_backprop", ASSIGNMENT, ASSIGNMENT, "ben").manual_score = 2.0
        gb.db.commit()
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "--course", str(course.root), "grade", ASSIGNMENT,
                             "--workers", "2"], cwd=repo, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and len(list(course.results_dir(ASSIGNMENT).glob("*.json"))) < 2:
        time.sleep(0.5)
    assert proc.poll() is None, "the grading run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # the TA's laptop dies mid-run
    proc.wait()
    assert 2 <= len(list(course.results_dir(ASSIGNMENT).glob("*.json"))) < 6
    results = grade(course, ASSIGNMENT, opts=GradeOptions(workers=2))
    assert {r["student"]: r["auto_points"] for r in results} == expected_points(course)
    assert len(list(course.results_dir(ASSIGNMENT).glob("*.json"))) == 6
    with Gradebook(course.db_url) as gb:
        assert len(gb.find_assignment(ASSIGNMENT).submissions) == 6
        assert gb.find_grade("q5_backprop", ASSIGNMENT, ASSIGNMENT, "ben").manual_score == 2.0
