"""Partial credit: a check made of weighted parts earns the points of the parts that pass, each part's result is data
(name, points, points available, message), and the record and the feedback line carry those points."""

import pytest

from autograder.assignment import Assignment, CheckContext
from autograder.checks.common import CheckFailed, Part, PartialCredit, PartScore, score_parts
from autograder.errors import GraderError
from autograder.judge import CheckResult, Verdict, run_check
from autograder.records import build_record, score_check
from autograder.rendering import verdict_text


def ok(message):
    return lambda: message


def fail(message):
    def run():
        raise CheckFailed(message)
    return run


def test_all_parts_pass_gives_every_part_its_points():
    result = score_parts([Part("a", 3, ok("fine")), Part("b", 1, ok("good"))])
    assert result.parts == (PartScore("a", 3, 3, "fine"), PartScore("b", 1, 1, "good"))
    assert result.fraction == 1.0 and result.message == "a (3/3 points): fine; b (1/1 points): good"


def test_no_part_passes_gives_every_reason_and_no_point():
    result = score_parts([Part("a", 3, fail("wrong")), Part("b", 1, fail("also wrong"))])
    assert result.fraction == 0.0 and [p.points for p in result.parts] == [0.0, 0.0]
    assert result.message == "a (0/3 points): wrong; b (0/1 points): also wrong"


def test_some_parts_pass_gives_their_share():
    result = score_parts([Part("a", 3, ok("fine")), Part("b", 1, fail("wrong"))])
    assert isinstance(result, PartialCredit) and result.fraction == 0.75
    assert [(p.name, p.points, p.max_points, p.passed) for p in result.parts] == [("a", 3, 3, True), ("b", 0, 1, False)]
    assert result.message == "a (3/3 points): fine; b (0/1 points): wrong"


def test_a_part_that_crashes_on_malformed_observations_fails_alone():
    result = score_parts([Part("a", 1, ok("fine")), Part("b", 1, lambda: {}["missing"])])
    assert result.fraction == 0.5 and result.parts[1].message.startswith("could not be checked (KeyError")


def test_the_judge_keeps_the_parts_and_a_dask_worker_sends_them_back():
    parts = lambda obs, ctx: score_parts([Part("a", 2, ok("fine")), Part("b", 2, fail("wrong"))])
    result = run_check("test_x", parts, {}, CheckContext())
    assert result.fraction == 0.5 and result.parts[1] == PartScore("b", 0.0, 2, "wrong") and not result.passed
    verdict = Verdict("toy", checks={"test_x": result})
    assert Verdict.from_dict(verdict.to_dict()).checks["test_x"] == result


@pytest.mark.parametrize("earned, word", [(10.0, "PASSED"), (6.0, "PARTIAL"), (0.0, "FAILED")])
def test_the_record_and_the_feedback_line_carry_the_parts_points(earned, word):
    parts = (PartScore("a", earned, 10, "msg"),)
    check = score_check("test_x", 10, earned / 10, "msg", parts)
    assert check.points == earned and check.outcome == word and check.parts == parts
    line = verdict_text("test_x", check.points, 10.0, "msg")
    assert line == f"[grader] test_x: {word} ({earned:g}/10 points) - msg\n"


def test_parts_that_do_not_add_up_to_the_declared_points_are_refused():
    with pytest.raises(GraderError, match="add up to 9 points but its declaration gives it 10"):
        score_check("test_x", 10, 1.0, "msg", (PartScore("a", 9, 9, "fine"),))


def test_a_checks_points_come_from_the_declaration_whatever_the_fraction(tmp_path):
    spec = Assignment(name="toy", notebook="toy.ipynb", code_cells=(), checks={"test_a": None, "test_b": None},
                      points={"test_a": 4, "test_b": 6}, probes_file=tmp_path / "probes.py")
    verdict = Verdict("toy", checks={"test_a": CheckResult("test_a", "half", 0.5),
                                     "test_b": CheckResult("test_b", "ok", 1.0)})
    record = build_record(spec, "ada", verdict, digest="d")
    assert [(c.grade_id, c.points, c.max_points) for c in record.checks] == [("test_a", 2.0, 4), ("test_b", 6.0, 6)]
    assert record.auto_points == 8.0 and record.auto_max == 10 and record.failed == {"test_a"}
