"""The grading record and its store (``autograder.records``), and the pipeline that makes them, on the toy course of
``tests/toy.py``: a student's result is computed once (``build_record``), written once (``RecordStore.save``), and
read back as it was written."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from nbgrader.api import Gradebook

from autograder.checks.common import PartScore
from autograder.judge import CheckResult, Verdict
from autograder.records import (GRADER_VERSION, CheckScore, GradingRecord, Miou, RecordStore, Timings, WrittenAnswer,
                                build_record)
from conftest import copy_course
from toy import NAME, submit, toy_assignment


def full_record(student: str = "ada") -> GradingRecord:
    parts = (PartScore("shapes", 3, 3, "right"), PartScore("shortcut", 0.0, 2, "should be the identity"))
    return GradingRecord(
        student=student, assignment=NAME, status="graded",
        checks=(CheckScore("test_double", 3, 5, "shapes (3/3 points): right; ...", parts),
                CheckScore("test_other", 0.0, 1, "no")),
        problems=("a problem",), flags=("a forged observation",), digest="abc",
        submitted_at=datetime(2026, 12, 1, 20, 15, tzinfo=timezone.utc), timings=Timings(judge=1.5, render=0.25),
        miou=Miou(0.53, 0.52, 0.53, "held-out scenes"), written=(WrittenAnswer("q1", 3.0, True),),
        sandbox={"returncode": 0, "worker": "host:12"})


def test_a_record_knows_its_totals_failures_and_notes():
    record = full_record()
    assert record.auto_points == 3 and record.auto_max == 6 and record.failed == {"test_double", "test_other"}
    assert record.check("test_double").outcome == "PARTIAL" and record.check("test_other").outcome == "FAILED"
    assert record.notes == ("a problem", "suspicion: a forged observation") and record.flagged
    with pytest.raises(KeyError, match="has no check 'test_nothing'"):
        record.check("test_nothing")


def test_a_record_reads_back_as_it_was_written():
    record = full_record()
    assert GradingRecord.from_json(record.to_json()) == record
    with pytest.raises(ValueError, match="record format"):
        GradingRecord.from_json('{"format": 0}')


def test_the_store_owns_its_files_and_forgets_on_request(tmp_path):
    from autograder.course import Course

    course = Course(tmp_path)
    store = RecordStore(course, NAME)
    assert store.get("ada") is None and store.records() == [] and store.students() == []
    store.folder.mkdir(parents=True)
    (store.folder / "old.json").write_text('{"student": "old", "status": "graded"}')  # a layout of an older grader
    assert store.get("old") is None and store.records() == []
    store.discard("old")
    assert store.students() == []


def test_a_crash_scores_every_declared_check_zero_and_says_why(tmp_path):
    spec = toy_assignment(tmp_path)
    record = build_record(spec, "ben", None, digest="d", problems=("late note",), crash="grading error: boom")
    assert record.status == "crashed" and record.problems == ("grading error: boom", "late note")
    assert [(c.grade_id, c.points, c.max_points) for c in record.checks] == [("test_double", 0.0, 2)]


def test_a_judged_record_takes_the_verdicts_problems_flags_and_miou(tmp_path):
    spec = toy_assignment(tmp_path)
    verdict = Verdict(NAME, problems=["p"], flags=["f"], seconds=1.234, sandbox={"returncode": 0},
                      checks={"test_double": CheckResult("test_double", "ok", 1.0)},
                      miou={"public": 0.5, "heldout": 0.4, "effective": 0.5, "heldout_kind": "scenes"})
    record = build_record(spec, "ada", verdict, digest="d", problems=("timestamp",))
    assert record.problems == ("p", "timestamp") and record.flags == ("f",) and record.timings.judge == 1.23
    assert record.miou == Miou(0.5, 0.4, 0.5, "scenes") and record.grader_version == GRADER_VERSION
    invalid = build_record(spec, "ada", Verdict(NAME, status="invalid", checks={
        "test_double": CheckResult("test_double", "not JSON", 0.0)}), digest="d")
    assert invalid.status == "invalid" and invalid.auto_points == 0


@pytest.mark.slow
def test_grade_makes_one_record_per_student_written_once_and_read_by_the_export(released_toy, tmp_path):
    """The whole pipeline on the toy: the judge in its sandbox, the record, nbgrader's rendering, the store; a bad
    timestamp is the student's own problem (not "nbgrader could not read the notebook"), and an unchanged submission
    is not graded again."""
    from autograder.export import scores_table
    from autograder.pipeline import GradeOptions, grade

    course = copy_course(released_toy, tmp_path / "course")
    spec = toy_assignment(tmp_path)
    submit(course, "ada", timestamp="2026-12-01 20:15:00 UTC")
    submit(course, "ben", code="def double(x):\n    return x * x\n", answered=())
    submit(course, "cara", timestamp="last tuesday, after lunch")
    lines = []
    records = {r.student: r for r in grade(course, spec, opts=GradeOptions(workers=2), log=lines.append)}
    assert {s: (r.status, r.auto_points, r.failed) for s, r in records.items()} == {
        "ada": ("graded", 2.0, set()), "ben": ("graded", 0.0, {"test_double"}), "cara": ("graded", 2.0, set())}
    assert records["ada"].submitted_at == datetime(2026, 12, 1, 20, 15, tzinfo=timezone.utc)
    (problem,) = records["cara"].problems
    assert "timestamp.txt holds 'last tuesday, after lunch', which is not a time" in problem
    assert records["cara"].submitted_at is None and (course.root / "autograded" / "cara" / NAME).is_dir()
    assert {w.grade_id: w.answered for w in records["ben"].written} == {"q1": False, "q2": False}
    assert RecordStore(course, NAME).records() == sorted(records.values(), key=lambda r: r.student)
    with Gradebook(course.db_url) as gb:
        assert gb.find_grade("test_double", NAME, NAME, "ada").auto_score == 2.0
        assert gb.find_submission(NAME, "ada").timestamp is not None
        assert gb.find_submission_notebook(NAME, NAME, "cara").flagged
    table = scores_table(course, NAME).set_index("student")
    assert "which is not a time" in table.loc["cara", "problems"] and table.loc["ben", "total"] == 0
    again = grade(course, spec, opts=GradeOptions(workers=2), log=lines.append)
    assert sum("up to date, skipped" in line for line in lines) == 3 and again == sorted(records.values(),
                                                                                         key=lambda r: r.student)
