"""``python -m autograder report``: the class report's numbers are the gradebook's and the records', students' text is
escaped, and the page opens in Chromium with its sections.

The class is the toy course's (``tests/toy.py``), graded without running anything: five records written through the
one writer (``RecordStore.save``) as the pipeline writes them (a check made of two parts, problems, a suspicion, an
invalid notebook, a crash, times and mIoU), a TA's manual scores entered through nbgrader's API, a due date, a late
submission and an extension. The page is read back through the ``data-key`` of its figures.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from nbgrader.api import Gradebook

from autograder.checks.common import PartScore
from autograder.records import CheckScore, GradingRecord, Miou, RecordStore, Timings, WrittenAnswer
from autograder.report import class_report
from conftest import copy_course
from toy import NAME, NOTEBOOK

DUE = datetime(2026, 12, 1, 23, 59, tzinfo=timezone.utc)
SCRIPT = '<script>alert("name")</script>'
IMG = "<img src=x onerror=alert(1)>"


def parts(even: bool, negative: bool, why: str = "double(-2) gave 4.0, expected -4.0") -> tuple[PartScore, ...]:
    return (PartScore("even", 1.0 if even else 0.0, 1, "right" if even else "double(2) gave 5.0, expected 4.0"),
            PartScore("negative", 1.0 if negative else 0.0, 1, "right" if negative else why))


def record(student: str, even: bool, negative: bool, *, status="graded", problems=(), flags=(), late_hours=-3.0,
           judge=1.0, miou=None, answered=("q1", "q2"), why: str = "double(-2) gave 4.0, expected -4.0") -> GradingRecord:
    ps = parts(even, negative, why)
    message = "; ".join(p.line() for p in ps)
    return GradingRecord(
        student=student, assignment=NAME, status=status,
        checks=(CheckScore("test_double", sum(p.points for p in ps), 2, message, ps),), problems=tuple(problems),
        flags=tuple(flags), digest=f"d-{student}", submitted_at=DUE + timedelta(hours=late_hours),
        timings=Timings(judge=judge, render=0.25), miou=Miou(miou, miou, miou, "scenes") if miou is not None else None,
        written=tuple(WrittenAnswer(q, m, q in answered) for q, m in (("q1", 3.0), ("q2", 1.0))),
        sandbox={"returncode": 0, "worker": f"host:{student}"})


@pytest.fixture(scope="module")
def reported_class(released_toy, tmp_path_factory):
    """The toy class with records, manual scores, a due date and an extension; and its report's path."""
    course = copy_course(released_toy, tmp_path_factory.mktemp("report") / "course")
    course.set_duedate(NAME, "2026-12-01 23:59:00 UTC")
    with Gradebook(course.db_url) as gb:
        gb.add_student("dev", first_name=SCRIPT, last_name="Raman")
    records = [
        record("ada", True, True, judge=1.5, miou=0.40),
        record("ben", True, False, flags=(f"a forged observation {IMG}",), miou=0.20, answered=("q1",)),
        record("cara", False, False, problems=("timestamp.txt holds 'soon', which is not a time",), late_hours=26,
               judge=2.0, miou=0.10, why="double(-1) gave 1.0, expected -2.0"),
        record("dev", False, False, status="invalid", problems=(f"the notebook is not JSON {IMG}",), late_hours=30,
               answered=()),
        record("eve", False, False, status="crashed", problems=("grading error: boom",), answered=()),
    ]
    store = RecordStore(course, NAME)
    for r in records:
        store.save(r, NOTEBOOK)
    with Gradebook(course.db_url) as gb:  # what a TA does in formgrader
        for student, q, score in (("ada", "q1", 3.0), ("ada", "q2", 1.0), ("ben", "q1", 1.5)):
            grade = gb.find_grade(q, NAME, NAME, student)
            grade.manual_score = score
            grade.needs_manual_grade = False
        gb.find_submission(NAME, "dev").extension = timedelta(hours=2)
        gb.db.commit()
    return course, class_report(course, [NAME])


class Figures(HTMLParser):
    """The text of every element that carries ``data-key``."""

    def __init__(self, text: str):
        super().__init__()
        self.figures: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        key = dict(attrs).get("data-key")
        self._open.append(key)
        if key is not None:
            self.figures[key] = ""

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for key in self._open:
            if key is not None:
                self.figures[key] += data


def test_the_totals_are_the_gradebooks(reported_class):
    course, path = reported_class
    figures = Figures(path.read_text()).figures
    with Gradebook(course.db_url) as gb:
        totals = [float(s.score) for s in gb.find_assignment(NAME).submissions]
        assert len(totals) == 5
    assert figures[f"{NAME}/summary/submitted"] == "5"
    assert figures[f"{NAME}/summary/mean"] == f"{statistics.mean(totals):.2f}"
    assert figures[f"{NAME}/summary/median"] == f"{statistics.median(totals):.2f}"
    assert figures[f"{NAME}/summary/max"] == f"{max(totals):g}" and figures[f"{NAME}/summary/min"] == f"{min(totals):g}"


def test_every_check_and_part_shows_who_earned_it_and_why_the_others_did_not(reported_class):
    course, path = reported_class
    text = path.read_text()
    figures = Figures(text).figures
    scored = [r for r in RecordStore(course, NAME).records() if r.status != "crashed"]
    assert [r.student for r in scored] == ["ada", "ben", "cara", "dev"]
    for part in ("even", "negative"):
        earned = sum(p.passed for r in scored for p in r.check("test_double").parts if p.name == part)
        key = f"{NAME}/items/test_double/{part}"
        assert figures[key + "/earned"] == str(earned)
        assert figures[key + "/share"] == f"{earned / len(scored):.0%}"
    assert figures[f"{NAME}/items/test_double/earned"] == "1"  # ada alone earned every point
    assert figures[f"{NAME}/items/test_double/mean"] == f"{statistics.mean(r.auto_points for r in scored):.2f}"
    # the most common failure of "negative": messages that differ only in numbers count as one (ben, cara and dev)
    assert "double(-2) gave 4.0, expected -4.0</span> (3)" in text
    assert "left out, because grading itself failed (grade again): eve" in text


def test_written_answers_show_the_tas_manual_scores(reported_class):
    course, path = reported_class
    figures = Figures(path.read_text()).figures
    with Gradebook(course.db_url) as gb:
        for q in ("q1", "q2"):
            grades = [gb.find_grade(q, NAME, NAME, s) for s in ("ada", "ben", "cara", "dev", "eve")]
            manual = [g.manual_score for g in grades if g.manual_score is not None]
            assert figures[f"{NAME}/written/{q}/graded"] == str(len(manual))
            assert figures[f"{NAME}/written/{q}/mean"] == f"{statistics.mean(manual):.2f}"
            assert figures[f"{NAME}/written/{q}/to_grade"] == str(sum(bool(g.needs_manual_grade) for g in grades))
            left = [g.student.id for g in grades if g.auto_score == 0 and g.manual_score is None]
            assert figures[f"{NAME}/written/{q}/unanswered"] == str(len(left))
    assert left == ["ben", "dev", "eve"]  # q2: the records say they left it as released


def test_lateness_extensions_flags_and_times_are_the_records_and_gradebooks(reported_class):
    course, path = reported_class
    text = path.read_text()
    figures = Figures(text).figures
    with Gradebook(course.db_url) as gb:
        late = {s.student_id: float(s.total_seconds_late) for s in gb.find_assignment(NAME).submissions}
    assert figures[f"{NAME}/late/count"] == str(sum(v > 0 for v in late.values())) == "2"
    assert figures[f"{NAME}/late/cara/hours_late"] == f"{late['cara'] / 3600:.2f}" == "26.00"
    assert figures[f"{NAME}/late/dev/extension_hours"] == "2"
    assert "no late policy declared" in text
    flagged = {key.rsplit("/", 1)[1] for key in figures if key.startswith(f"{NAME}/flagged/")}
    assert flagged == {r.student for r in RecordStore(course, NAME).records() if r.flagged} == {"ben", "cara", "dev",
                                                                                                "eve"}
    for r in RecordStore(course, NAME).records():
        assert figures[f"{NAME}/time/{r.student}/judge"] == f"{r.timings.judge:.2f}"


def test_what_students_wrote_is_escaped(reported_class):
    _, path = reported_class
    text = path.read_text()
    assert SCRIPT not in text and IMG not in text
    assert "&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;" in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_the_command_writes_the_page_and_refuses_a_course_without_students(reported_class, released_toy, tmp_path,
                                                                          capsys):
    from autograder.cli import main

    course, _ = reported_class
    out = tmp_path / "term.html"
    assert main(["--course", str(course.root), "report", NAME, "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out and 'id="items-toy"' in out.read_text()
    empty = copy_course(released_toy, tmp_path / "empty")
    assert main(["--course", str(empty.root), "report", NAME]) == 2
    assert "no students in the gradebook for toy" in capsys.readouterr().err


@pytest.mark.slow
def test_the_page_opens_in_chromium_with_its_sections(reported_class, tmp_path):
    from browser import browser_page, unavailable_reason

    if unavailable_reason():
        pytest.skip(unavailable_reason())
    _, path = reported_class
    with browser_page(tmp_path / "shots") as view:
        view.page.goto(path.as_uri())
        for section in ("totals", "items", "written", "late", "flags", "time"):
            assert view.page.locator(f"#{section}-{NAME}").is_visible()
        assert view.page.locator("h1").inner_text().startswith("Class report")
        widths = view.page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        assert len(widths) >= 3 and all(w > 0 for w in widths)  # the embedded plots decode
        assert view.page.evaluate("() => document.querySelectorAll('script').length") == 0
        view.shot("class-report")


def test_the_late_policy_and_the_records_late_fields_are_shown_as_declared(tmp_path):
    """What ``autograder.late`` declares and writes (course.toml's ``[late]``, extensions.csv, the record's late
    fields), read where the late policy keeps them; a record without them shows nothing."""
    from types import SimpleNamespace

    from autograder.report.data import extensions_table, late_policy, record_late_fields

    assert late_policy(tmp_path) is None and extensions_table(tmp_path) is None
    (tmp_path / "course.toml").write_text('[grading]\ndata = "synthetic"\n\n[late]\npenalty = "per_day"\nrate = 0.1\n')
    assert late_policy(tmp_path) == "penalty = per_day; rate = 0.1"
    (tmp_path / "extensions.csv").write_text(f"student,assignment,until,reason\ndev,toy,2026-12-03T12:00,{SCRIPT}\n")
    assert extensions_table(tmp_path).to_dict("records") == [
        {"student": "dev", "assignment": "toy", "until": "2026-12-03T12:00", "reason": SCRIPT}]
    late = SimpleNamespace(lateness="2 h 5 min late; 1 late day spent", late_days_spent=1, late_penalty=0.1,
                           extended_until=datetime(2026, 12, 3, 12, tzinfo=timezone.utc))
    assert record_late_fields(late) == ["2 h 5 min late; 1 late day spent", "late days spent: 1",
                                        "10% of the points taken", "extended until 2026-12-03 12:00 UTC"]
    assert record_late_fields(record("ada", True, True)) == []


@pytest.mark.slow
def test_the_simulated_class_report_has_the_gradebooks_totals_and_the_records_checks(graded_class, tmp_path):
    """The class of ``tests/classes.py`` (both assignments, graded for real): totals, tier counts and every check's
    and part's count of students who earned it, as the gradebook and the records hold them."""
    from autograder.term import GradedSetting
    from classes import ASSIGNMENT, CONCEPTS

    course, _ = graded_class
    figures = Figures(class_report(course, out=tmp_path / "class.html").read_text()).figures
    for assignment in (ASSIGNMENT, CONCEPTS):
        with Gradebook(course.db_url) as gb:
            totals = [float(s.score) for s in gb.find_assignment(assignment).submissions]
        assert figures[f"{assignment}/summary/mean"] == f"{statistics.mean(totals):.2f}"
        assert figures[f"{assignment}/summary/max"] == f"{max(totals):g}"
        records = [r for r in RecordStore(course, assignment).records() if r.status != "crashed"]
        for check in records[0].checks:
            earned = sum(r.check(check.grade_id).passed for r in records)
            assert figures[f"{assignment}/items/{check.grade_id}/earned"] == str(earned)
            for part in check.parts:
                got = sum(p.passed for r in records for p in r.check(check.grade_id).parts if p.name == part.name)
                assert figures[f"{assignment}/items/{check.grade_id}/{part.name}/earned"] == str(got)
    homework = RecordStore(course, ASSIGNMENT).records()
    for tier, threshold in GradedSetting.read(course.root).tiers.as_dict().items():
        reached = sum(r.check(f"test_miou_{tier}").points > 0 for r in homework)
        assert figures[f"{ASSIGNMENT}/tiers/tier {threshold:g}"] == str(reached)
