"""Partial credit: a check made of weighted parts earns the points of the parts that pass, and the gradebook and
the feedback line carry that fraction of the cell's points."""

from types import SimpleNamespace

import pytest

from autograder.checks.common import CheckFailed, Part, PartialCredit, score_parts
from autograder.gradebook import apply_verdict
from autograder.rendering import verdict_text


def ok(message):
    return lambda: message


def fail(message):
    def run():
        raise CheckFailed(message)
    return run


def test_all_parts_pass_gives_the_messages():
    assert score_parts([Part("a", 3, ok("fine")), Part("b", 1, ok("good"))]) == "a (3/3 points): fine; b (1/1 points): good"


def test_no_part_passes_fails_with_every_reason():
    with pytest.raises(CheckFailed, match=r"a \(0/3 points\): wrong; b \(0/1 points\): also wrong"):
        score_parts([Part("a", 3, fail("wrong")), Part("b", 1, fail("also wrong"))])


def test_some_parts_pass_gives_their_share():
    result = score_parts([Part("a", 3, ok("fine")), Part("b", 1, fail("wrong"))])
    assert isinstance(result, PartialCredit) and result.fraction == 0.75
    assert result.message == "a (3/3 points): fine; b (0/1 points): wrong"


def test_a_part_that_crashes_on_malformed_observations_fails_alone():
    result = score_parts([Part("a", 1, ok("fine")), Part("b", 1, lambda: {}["missing"])])
    assert result.fraction == 0.5 and "b (0/1 points): could not be checked (KeyError" in result.message


@pytest.mark.parametrize("fraction, points, word", [(1.0, 10.0, "PASSED"), (0.6, 6.0, "PARTIAL"), (0.0, 0.0, "FAILED")])
def test_gradebook_and_feedback_carry_the_fraction(fraction, points, word):
    grade = SimpleNamespace(max_score=10, auto_score=None, manual_score=None, needs_manual_grade=True)
    assert apply_verdict(grade, fraction) == points and grade.auto_score == points
    assert grade.needs_manual_grade is False
    assert verdict_text("test_x", grade.auto_score, 10.0, "msg") == f"[grader] test_x: {word} ({points:g}/10 points) - msg\n"


def test_a_tas_manual_score_keeps_its_review_flag():
    grade = SimpleNamespace(max_score=10, auto_score=None, manual_score=7.0, needs_manual_grade=True)
    apply_verdict(grade, 0.5)
    assert grade.auto_score == 5.0 and grade.manual_score == 7.0 and grade.needs_manual_grade is True
