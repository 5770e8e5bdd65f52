"""The late policy (``autograder.late``): every boundary of the assessment by hand-computed cases (exactly at the due
date, one second after, the grace period's edge, a daylight-saving change in the course's time zone, an extension, a
student who runs out of late days, the penalty's floor), then the policy through nbgrader's ``LateSubmissionPlugin``
on the toy course (``tests/toy.py``): nbgrader's own ``AssignLatePenalties`` and ours agree, and the grader's
summary, the record, the gradebook and the export carry it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.late import (Handed, LateError, LatePolicy, apply_penalties, assess, extend, parse_time,
                             read_extensions, student_lateness)
from autograder.records import GradingRecord
from conftest import copy_course
from toy import NAME, NOTEBOOK, submit, toy_assignment

UTC = timezone.utc
DUE = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
PER_DAY = LatePolicy(penalty="per_day", rate=0.1)


def judged(policy: LatePolicy, late: timedelta, extension: datetime | None = None):
    """One submission ``late`` after ``DUE``."""
    extensions = {"a1": extension} if extension else {}
    return assess(policy, [Handed("a1", DUE, DUE + late)], extensions)["a1"]


@pytest.mark.parametrize("late, fraction", [
    (timedelta(0), 0.0),                         # exactly at the due date: on time
    (timedelta(seconds=1), 0.1),                 # one second after: a started day
    (timedelta(days=1), 0.1),                    # exactly one day
    (timedelta(days=1, seconds=1), 0.2),         # a second into the second day
    (timedelta(days=30), 1.0),                   # no floor: everything can go
])
def test_per_day_counts_started_days_from_the_due_date(late, fraction):
    assert judged(PER_DAY, late).fraction == pytest.approx(fraction)


def test_an_early_submission_is_on_time_and_says_so():
    early = judged(PER_DAY, timedelta(seconds=-3600))
    assert early.seconds_late == 0 and early.fraction == 0 and early.text.endswith("on time")


def test_per_hour_and_the_floor():
    per_hour = LatePolicy(penalty="per_hour", rate=0.05, floor=0.6)
    assert judged(per_hour, timedelta(hours=1)).fraction == pytest.approx(0.05)
    assert judged(per_hour, timedelta(hours=1, seconds=1)).fraction == pytest.approx(0.10)
    assert judged(per_hour, timedelta(hours=8)).fraction == pytest.approx(0.40)   # at the floor: 60% kept
    assert judged(per_hour, timedelta(hours=9)).fraction == pytest.approx(0.40)   # never below it
    assert "keeping at least 60%" in judged(per_hour, timedelta(hours=9)).text


def test_the_grace_periods_edge():
    policy = LatePolicy(penalty="per_day", rate=0.1, grace_minutes=15)
    edge = judged(policy, timedelta(minutes=15))
    assert edge.fraction == 0 and edge.seconds_late == 900 and "within the 15 min grace period: on time" in edge.text
    past = judged(policy, timedelta(minutes=15, seconds=1))
    assert past.fraction == pytest.approx(0.1) and "late by 15 min" in past.text  # counted from the due date


def test_zero_and_none():
    assert judged(LatePolicy(penalty="zero"), timedelta(seconds=1)).fraction == 1.0
    assert judged(LatePolicy(penalty="zero"), timedelta(0)).fraction == 0.0
    none = judged(LatePolicy(), timedelta(hours=5))
    assert none.fraction == 0 and "late by 5 h" in none.text and "no late penalty (the course's policy)" in none.text


def test_an_extension_replaces_the_due_date():
    extended = DUE + timedelta(days=2)
    on_time = judged(PER_DAY, timedelta(days=2), extension=extended)
    assert on_time.fraction == 0 and on_time.extended_until == extended and on_time.deadline == extended
    assert "due 2026-12-03 22:00 UTC (extended from 2026-12-01 22:00 UTC)" in on_time.text
    after = judged(PER_DAY, timedelta(days=2, seconds=1), extension=extended)
    assert after.seconds_late == 1 and after.fraction == pytest.approx(0.1)


def test_late_days_are_spent_in_due_date_order_until_the_bank_runs_out():
    policy = LatePolicy(penalty="per_day", rate=0.1, late_days=2)
    second_due = DUE + timedelta(days=7)
    handed = [Handed("a2", second_due, second_due + timedelta(hours=3)),      # listed first, due later
              Handed("a1", DUE, DUE + timedelta(hours=36))]                  # 1.5 days late: 2 days spent
    result = assess(policy, handed, {})
    assert (result["a1"].late_days_spent, result["a1"].late_days_left, result["a1"].fraction) == (2, 0, 0.0)
    assert (result["a2"].late_days_spent, result["a2"].late_days_left) == (0, 0)
    assert result["a2"].fraction == pytest.approx(0.1) and result["a2"].penalised_seconds == 3 * 3600
    assert "0 late day(s) spent, 0 left of 2" in result["a2"].text


def test_late_days_cover_what_they_can_and_the_rest_is_penalised_from_their_end():
    policy = LatePolicy(penalty="per_day", rate=0.1, late_days=1)
    partly = judged(policy, timedelta(hours=30))
    assert partly.late_days_spent == 1 and partly.penalised_seconds == 6 * 3600 and partly.fraction == pytest.approx(0.1)
    within_grace = judged(LatePolicy(penalty="per_day", rate=0.1, late_days=1, grace_minutes=10), timedelta(minutes=5))
    assert within_grace.late_days_spent == 0 and within_grace.late_days_left == 1


def test_a_daylight_saving_change_in_the_course_time_zone():
    """New York moves its clocks forward on 2026-03-08 at 02:00: 23:59 local is 04:59 UTC the day before and 03:59
    UTC that day. Times without an offset are read in the course's zone; a day late is 24 hours whatever the clocks."""
    zone = ZoneInfo("America/New_York")
    before, after = parse_time("2026-03-07T23:59", zone), parse_time("2026-03-08 23:59", zone)
    assert before == datetime(2026, 3, 8, 4, 59, tzinfo=UTC) and after == datetime(2026, 3, 9, 3, 59, tzinfo=UTC)
    assert after - before == timedelta(hours=23)
    policy = LatePolicy(timezone="America/New_York", penalty="per_day", rate=0.1)
    late = assess(policy, [Handed("a1", before, after)], {})["a1"]
    assert late.fraction == pytest.approx(0.1) and "late by 23 h" in late.text
    assert "due 2026-03-07 23:59 EST (America/New_York; 2026-03-08 04:59 UTC)" in late.text
    assert "submitted 2026-03-08 23:59 EDT (America/New_York; 2026-03-09 03:59 UTC)" in late.text
    one_second = assess(policy, [Handed("a1", after, after + timedelta(seconds=1))], {})["a1"]
    assert one_second.seconds_late == 1 and one_second.fraction == pytest.approx(0.1)
    with pytest.raises(LateError, match="does not exist in America/New_York"):
        parse_time("2026-03-08T02:30", zone)
    with pytest.raises(LateError, match="happens twice in America/New_York"):
        parse_time("2026-11-01T01:30", zone)
    assert parse_time("2026-11-01T01:30-04:00", zone) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_unknown_times_and_due_dates_are_said_not_guessed():
    unknown = assess(PER_DAY, [Handed("a1", DUE, None)], {})["a1"]
    assert unknown.fraction == 0 and "submission time unknown: lateness not judged" in unknown.text
    assert assess(PER_DAY, [Handed("a1", None, DUE)], {})["a1"].text.startswith("no due date")


@pytest.mark.parametrize("table, said", [
    ({"penalty": "per_week"}, "penalty 'per_week' is not one of"),
    ({"penalty": "per_day"}, "needs a rate between 0 and 1"),
    ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
    ({"grace": 15}, r"unknown key\(s\) \['grace'\]"),
    ({"rate": "ten percent", "penalty": "per_day"}, "numbers are written without quotes"),
    ({"floor": 1.0}, "floor is a share in"),
])
def test_a_malformed_policy_is_refused_saying_what_to_write(table, said):
    with pytest.raises(LateError, match=said):
        LatePolicy.from_table(table)


def test_course_toml_declares_the_policy_once_and_the_repositorys_parses(repo, tmp_path):
    from autograder.term import GradedSetting

    assert GradedSetting.read(repo).late == LatePolicy()  # the repository's course.toml: explicit defaults
    (tmp_path / "course.toml").write_text('[late]\ntimezone = "Europe/Berlin"\npenalty = "per_hour"\nrate = 0.02\n'
                                          "floor = 0.5\nlate_days = 3\ngrace_minutes = 10\n")
    late = GradedSetting.read(tmp_path).late
    assert late == LatePolicy("Europe/Berlin", 10, "per_hour", 0.02, 0.5, 3)
    assert late.describe() == ("a grace period of 10 min; 3 late day(s) per student for the term; 2% of the points "
                               "per started hour late, keeping at least 50% (times in Europe/Berlin)")


def test_a_record_written_before_the_lateness_fields_still_loads(tmp_path):
    from test_records import full_record

    data = json.loads(full_record().to_json())
    for name in ("due_at", "extended_until", "seconds_late", "late_days_spent", "late_days_left", "late_penalty",
                 "lateness"):
        del data[name]
    old = GradingRecord.from_json(json.dumps(data))
    assert old == full_record() and old.due_at is None and old.late_penalty == 0.0


def test_the_extensions_file_is_read_in_the_course_time_zone_and_its_errors_name_the_line(tmp_path):
    zone = ZoneInfo("Europe/Berlin")
    (tmp_path / "extensions.csv").write_text("student,assignment,until,reason\nada,a1,2026-12-03T23:59,ill\n"
                                             "ben,a1,2026-12-04T10:00:00+00:00,\n")
    found = read_extensions(tmp_path, zone)
    assert found[("ada", "a1")].until == datetime(2026, 12, 3, 22, 59, tzinfo=UTC)
    assert found[("ben", "a1")].until == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    (tmp_path / "extensions.csv").write_text("student,assignment,until\nada,a1,next monday\n")
    with pytest.raises(LateError, match=r"extensions.csv, line 2: 'next monday' is not an ISO 8601 time"):
        read_extensions(tmp_path, zone)


# --- through nbgrader, on the toy course --------------------------------------------------------------------------


POLICY = ('[late]\ntimezone = "Europe/Berlin"\ngrace_minutes = 5\npenalty = "per_day"\nrate = 0.25\nfloor = 0.5\n'
          "late_days = 1\n")


@pytest.fixture
def course(released_toy, tmp_path):
    course = copy_course(released_toy, tmp_path / "course")
    (course.root / "course.toml").write_text(POLICY)
    course.set_duedate(NAME, "2026-12-01 22:00:00 UTC")  # 23:00 in Berlin
    return course


def graded(course, student: str, timestamp: str, answered=()):
    """``student``'s submission graded as ``grade`` does after the judge (``pipeline._record``), the judge's
    verdict given: all automatic points."""
    from autograder.judge import CheckResult, Verdict
    from autograder.pipeline import Judged, _record
    from autograder.records import RecordStore

    submit(course, student, timestamp=timestamp, answered=answered)
    spec = toy_assignment(course.root)
    verdict = Verdict(NAME, checks={"test_double": CheckResult("test_double", "double doubles", 1.0)})
    return _record(course, spec, RecordStore(course, NAME), Judged(student, verdict), digest="d")


def penalty(course, student: str) -> tuple[float | None, float]:
    with Gradebook(course.db_url) as gb:
        submission = gb.find_submission(NAME, student)
        return submission.notebooks[0].late_submission_penalty, submission.total_seconds_late


def test_nbgrader_and_the_grader_agree_on_the_penalty_and_every_reader_shows_it(course):
    """Two days late with one late day: one day spent, a started day penalised (25% of the 2 automatic points)."""
    from nbgrader.preprocessors import AssignLatePenalties

    from autograder.course import nbgrader_config

    record = graded(course, "ada", "2026-12-03 21:00:00 UTC")
    assert (record.seconds_late, record.late_days_spent, record.late_days_left) == (47 * 3600, 1, 0)
    assert record.late_penalty == pytest.approx(0.25) and record.due_at == datetime(2026, 12, 1, 22, tzinfo=UTC)
    assert penalty(course, "ada") == (pytest.approx(0.5), 47 * 3600)
    summary = nbformat.read(course.root / "autograded" / "ada" / NAME / NOTEBOOK, as_version=4).cells[0].source
    assert "- submitted: 2026-12-03 22:00 CET (Europe/Berlin; 2026-12-03 21:00 UTC)" in summary
    assert "due 2026-12-01 23:00 CET (Europe/Berlin; 2026-12-01 22:00 UTC)" in summary
    assert "**late by 1 d 23 h**; 1 late day(s) spent, 0 left of 1; late penalty 25% of the points" in summary
    # nbgrader's own preprocessor, configured by the course's nbgrader_config.py, gives the same penalty
    config = nbgrader_config(course.root)
    config.CourseDirectory.root = str(course.root)
    assert config.AssignLatePenalties.plugin_class == "autograder.late.CoursePenalty"
    with Gradebook(course.db_url) as gb:
        gb.find_submission_notebook(NAME, NAME, "ada").late_submission_penalty = None
        gb.db.commit()
    resources = {"nbgrader": {"notebook": NAME, "assignment": NAME, "student": "ada", "db_url": course.db_url}}
    AssignLatePenalties(config=config).preprocess(nbformat.v4.new_notebook(), resources)
    assert penalty(course, "ada")[0] == pytest.approx(0.5)


@pytest.mark.slow  # a subprocess or a whole release: the full suite's, not the fast tier's
def test_the_penalty_follows_the_manual_scores_and_the_export_shows_it(course):
    import pandas as pd

    from autograder.export import export

    graded(course, "ben", "2026-12-03 21:00:00 UTC", answered=("q1",))
    with Gradebook(course.db_url) as gb:  # a TA grades the written answer in formgrader: 2 + 3 points
        gb.find_grade("q1", NAME, NAME, "ben").manual_score = 3.0
        gb.db.commit()
    export(course, [NAME], log=lambda *_: None)
    assert penalty(course, "ben")[0] == pytest.approx(0.25 * 5)
    row = pd.read_csv(course.root / "grading" / "export" / f"{NAME}_scores.csv").set_index("student").loc["ben"]
    assert (row["raw_total"], row["late_penalty"], row["total"]) == (5.0, 1.25, 3.75)
    assert row["late_days_spent"] == 1 and "late penalty 25% of the points" in row["lateness"]
    canvas = pd.read_csv(course.root / "grading" / "export" / "canvas_import.csv").set_index("SIS Login ID")
    assert float(canvas.loc["ben", NAME]) == 3.75


def test_an_extension_granted_after_grading_reaches_the_gradebook_the_record_and_the_bank(course):
    from autograder.records import RecordStore

    graded(course, "cara", "2026-12-02 10:00:00 UTC")  # 12 h late: the one late day spent
    assert RecordStore(course, NAME).get("cara").late_days_spent == 1
    said = []
    extend(course, "cara", NAME, "2026-12-02T12:00", reason="ill", log=said.append)  # Berlin: 11:00 UTC
    record = RecordStore(course, NAME).get("cara")
    assert record.extended_until == datetime(2026, 12, 2, 11, tzinfo=UTC) and record.seconds_late == 0
    assert record.late_days_spent == 0 and record.late_days_left == 1 and record.late_penalty == 0
    assert penalty(course, "cara") == (None, 0)
    with Gradebook(course.db_url) as gb:
        assert gb.find_submission(NAME, "cara").extension == timedelta(hours=13)
    assert "cara has until 2026-12-02 12:00 CET (Europe/Berlin; 2026-12-02 11:00 UTC)" in said[0]
    assert "grade toy --student cara --force" in said[1]
    assert "ill" in (course.root / "extensions.csv").read_text()
    extend(course, "cara", NAME, None, log=said.append)
    assert RecordStore(course, NAME).get("cara").late_days_spent == 1 and "extension of toy removed" in said[2]


def test_extend_refuses_what_it_cannot_mean(course):
    with pytest.raises(LateError, match="no student 'nobody' in the gradebook"):
        extend(course, "nobody", NAME, "2026-12-05T12:00", log=lambda *_: None)
    submit(course, "dev")
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_student("dev")
    with pytest.raises(LateError, match="no assignment 'hw9' in the gradebook; it has toy"):
        extend(course, "dev", "hw9", "2026-12-05T12:00", log=lambda *_: None)
    with pytest.raises(LateError, match="is not after toy's due date"):
        extend(course, "dev", NAME, "2026-12-01T20:00", log=lambda *_: None)
    assert not (course.root / "extensions.csv").exists()


def test_the_cli_extends(course, capsys):
    from autograder.cli import main

    graded(course, "eve", "2026-12-02 10:00:00 UTC")
    assert main(["--course", str(course.root), "extend", "eve", NAME, "--until", "2026-12-01 23:00",
                 "--reason", "x"]) == 2  # 23:00 Berlin is the due date itself: not an extension
    assert "is not after toy's due date" in capsys.readouterr().err
    assert main(["--course", str(course.root), "extend", "eve", NAME, "--until", "2026-12-04T00:00"]) == 0
    assert student_lateness(course, "eve")[NAME].seconds_late == 0


@pytest.mark.slow  # a subprocess or a whole release: the full suite's, not the fast tier's
def test_collect_warns_when_lateness_would_rest_on_canvas_file_names_alone(released_toy, tmp_path):
    """A Canvas export without ``timestamps.csv`` (Canvas's own has none): collect says that the late policy cannot
    judge anyone and what to add; with times for some students only, it names the others."""
    import zipfile

    from autograder.collect import collect

    course = copy_course(released_toy, tmp_path / "course")
    notebook = (course.root / "release" / NAME / NOTEBOOK).read_bytes()
    names = {"lovelaceada_late_1001_5001_toy.ipynb": notebook, "okaforben_1002_5002_toy.ipynb": notebook}
    with zipfile.ZipFile(tmp_path / "canvas.zip", "w") as z:
        for name, data in names.items():
            z.writestr(name, data)
    said = []
    report = collect(course, NAME, tmp_path / "canvas.zip", log=said.append)
    (warning,) = report["warnings"]
    assert "lateness rests on Canvas's late_ marker in the file names alone (1 student(s) marked late)" in warning
    assert "put a timestamps.csv" in warning and any(line.startswith("  WARNING: ") for line in said)
    with zipfile.ZipFile(tmp_path / "timed.zip", "w") as z:
        for name, data in names.items():
            z.writestr(name.replace("_500", "_600"), data)  # newer uploads
        z.writestr("timestamps.csv", "student_id,timestamp\n1002,2026-12-01T20:00:00Z\n")
    report = collect(course, NAME, tmp_path / "timed.zip", log=said.append)
    (warning,) = report["warnings"]
    assert warning.startswith("no submission time for lovelaceada in timestamps.csv (marked late by Canvas: "
                              "lovelaceada): their lateness is not judged")
