"""The written-answer rules shared by the notebook's check cells and the grader: the results table is read the
usual ways a number is written, and its mIoU is compared with the checkpoint's within the declared tolerance."""

import pytest

from course_lib.answers import MIOU_TOLERANCE, answer_problems, miou_disagreement, parse_results_table

TABLE = """| Metric | Value |
|--------|-------|
| Final Validation mIoU | {miou} |
| Final Pixel Accuracy | {acc} |
| Total Model Parameters | {params} |
| Training Time (minutes) | 1.82 |
"""


@pytest.mark.parametrize("miou, acc", [("0.442", "0.9165"), ("44.2 %", "91.65 %"), ("44.2%", "91.65%"),
                                       ("44.2", "91.65"), ("0.4420 (val)", "0.9165")])
def test_fractions_are_read_as_fractions_or_percentages(miou, acc):
    values = parse_results_table(TABLE.format(miou=miou, acc=acc, params="225,797"))
    assert values["miou"] == pytest.approx(0.442) and values["pixel_accuracy"] == pytest.approx(0.9165)
    assert values["num_parameters"] == 225_797 and values["training_minutes"] == pytest.approx(1.82)


def test_counts_are_never_divided():
    assert parse_results_table(TABLE.format(miou="0.5", acc="0.9", params="42"))["num_parameters"] == 42


def test_a_missing_value_is_none_and_named_by_the_answers_check():
    text = TABLE.format(miou="", acc="0.9", params="42")
    assert parse_results_table(text)["miou"] is None
    assert answer_problems({"q1_results_table": text}) == {"q1_results_table": "the results table lacks ['miou']"}


def test_disagreement_within_the_tolerance_only():
    assert miou_disagreement(0.5349, 0.5349) is None
    assert miou_disagreement(0.53, 0.5349) is None  # rounded to two places
    assert miou_disagreement(0.5349 + MIOU_TOLERANCE * 1.5, 0.5349) is not None
    assert "reports no validation mIoU" in miou_disagreement(None, 0.5)
