"""Every hidden check of Assignment 1 passes on the reference (judged in the sandbox) and fails on a planted bug
(judged as a student is, with the sandbox's runner in this process: ``tests/inprocess.py``)."""

import json
import re
import shutil

import nbformat
import pytest
import torch

from autograder.checks.segmentation_hw import CHECKS
from autograder.judge import judge_submission
from classes import ASSIGNMENT, student_notebook
from inprocess import run_in_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(released_course, tmp_path_factory):
    """A complete reference submission folder (release notebook filled in, checkpoint, results)."""
    from autograder.course import Course

    course = Course(released_course)
    folder = tmp_path_factory.mktemp("reference")
    artifacts = course.root / "source" / ASSIGNMENT
    for name in ("segmentation_hw_checkpoint.pt", "segmentation_hw_results.json"):
        shutil.copy(artifacts / name, folder / name)
    metrics = json.loads((folder / "segmentation_hw_results.json").read_text())["metrics"]
    nb = student_notebook(course, {"residual_block", "segmentation_model"}, True, metrics)
    nbformat.write(nb, folder / "segmentation_hw.ipynb")
    return folder


def planted(reference, tmp_path, edit_cell=None, edit_answers=None, checkpoint=None):
    folder = tmp_path / "planted"
    shutil.copytree(reference, folder)
    nb = nbformat.read(folder / "segmentation_hw.ipynb", as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    if edit_cell:
        gid, old, new = edit_cell
        assert old in cells[gid].source
        cells[gid].source = cells[gid].source.replace(old, new)
    if edit_answers:
        edit_answers(cells)
    nbformat.write(nb, folder / "segmentation_hw.ipynb")
    if checkpoint is not None:
        checkpoint(folder)
    return judge_submission(folder, ASSIGNMENT, run=run_in_process)


def failed(verdict) -> set[str]:
    return {gid for gid, r in verdict.checks.items() if not r.passed}


def test_reference_passes_every_check(reference):
    verdict = judge_submission(reference, ASSIGNMENT)
    assert failed(verdict) == set(), {g: r.message for g, r in verdict.checks.items()}


def test_block_without_skip_connection_fails_the_block_check(reference, tmp_path):
    verdict = planted(reference, tmp_path, ("residual_block", "out + self.shortcut(x)", "out"))
    assert "test_residual_block" in failed(verdict)
    assert "identity" in verdict.checks["test_residual_block"].message


def test_model_with_wrong_class_count_fails_the_model_check(reference, tmp_path):
    verdict = planted(reference, tmp_path, ("segmentation_model", "nn.Conv2d(head_in, num_classes, 1)",
                                            "nn.Conv2d(head_in, num_classes - 1, 1)"))
    assert "test_segmentation_model" in failed(verdict)
    assert re.search(r"expected \(\d+, 21, \d+, \d+\)", verdict.checks["test_segmentation_model"].message)


def test_misreported_parameter_count_fails_the_parameter_check(reference, tmp_path):
    def edit(cells):
        cells["q1_results_table"].source = re.sub(r"\| Total Model Parameters \| [\d,]+ \|",
                                                  "| Total Model Parameters | 123,456 |", cells["q1_results_table"].source)
    verdict = planted(reference, tmp_path, edit_answers=edit)
    assert failed(verdict) == {"test_parameter_count"}


def test_untrained_checkpoint_fails_every_tier(reference, tmp_path):
    def untrained(folder):
        from autograder.reference.segmentation_hw import SegmentationModel
        from course_lib.train import save_checkpoint

        payload = torch.load(folder / "segmentation_hw_checkpoint.pt", weights_only=True)
        save_checkpoint(folder / "segmentation_hw_checkpoint.pt", SegmentationModel(**payload["model_kwargs"]),
                        payload["model_kwargs"], metrics=payload["metrics"])
    verdict = planted(reference, tmp_path, checkpoint=untrained)
    assert {"test_miou_target", "test_miou_good", "test_miou_excellent"} <= failed(verdict)


def _table_miou(text):
    def edit(cells):
        cells["q1_results_table"].source = re.sub(r"\| Final Validation mIoU \| [\d.]+ \|",
                                                  f"| Final Validation mIoU | {text} |", cells["q1_results_table"].source)
    return edit


def test_inflated_reported_miou_fails_the_table_check_and_no_tier(reference, tmp_path):
    verdict = planted(reference, tmp_path, edit_answers=_table_miou("0.9100"))
    assert failed(verdict) == {"test_results_table"}
    assert "must agree" in verdict.checks["test_results_table"].message
    assert "held-out mIoU" in verdict.checks["test_miou_excellent"].message


def test_a_table_written_in_percent_gets_every_point(reference, tmp_path):
    measured = json.loads((reference / "segmentation_hw_results.json").read_text())["metrics"]["miou"]
    for i, text in enumerate((f"{100 * measured:.1f} %", f"{100 * measured:.2f}%", f"{measured:.3f}")):
        verdict = planted(reference, tmp_path / str(i), edit_answers=_table_miou(text))
        assert failed(verdict) == set(), (text, {g: r.message for g, r in verdict.checks.items() if not r.passed})


def test_placeholder_answer_fails_the_answers_check(reference, tmp_path):
    def edit(cells):
        cells["q9_miou"].source = "YOUR ANSWER HERE"
    verdict = planted(reference, tmp_path, edit_answers=edit)
    assert failed(verdict) == {"test_answers_complete"}
    assert "Q9: still the placeholder" in verdict.checks["test_answers_complete"].message


def test_every_check_is_covered_by_a_planted_bug():
    covered = {"test_residual_block", "test_segmentation_model", "test_parameter_count", "test_miou_target",
               "test_miou_good", "test_miou_excellent", "test_results_table", "test_answers_complete"}
    assert covered == set(CHECKS)


def _table_parameters(text):
    def edit(cells):
        cells["q1_results_table"].source = re.sub(r"\| Total Model Parameters \| [\d,]+ \|",
                                                  f"| Total Model Parameters | {text} |", cells["q1_results_table"].source)
    return edit


def test_the_parameter_row_in_each_accepted_format_gets_every_point_and_a_rounded_one_does_not(reference, tmp_path):
    """What the Q1 question and the visible check state (issue 25): the count exactly as printed, with or without
    separators, passes the hidden check as it passes the visible one (``parameter_count_problem``, the same rule); a
    rounded 225.8k fails both, and only the parameter check."""
    from course_lib.answers import parameter_count_problem

    count = json.loads((reference / "segmentation_hw_results.json").read_text())["metrics"]["num_parameters"]
    for i, text in enumerate((f"{count}", f"{count:,}", f"{count:,}".replace(",", " "))):
        verdict = planted(reference, tmp_path / str(i), edit_answers=_table_parameters(text))
        assert failed(verdict) == set(), (text, {g: r.message for g, r in verdict.checks.items() if not r.passed})
        row = f"| Total Model Parameters | {text} |"
        assert parameter_count_problem(row, count) is None, text
    rounded = f"{count / 1000:.1f}k"
    verdict = planted(reference, tmp_path / "rounded", edit_answers=_table_parameters(rounded))
    assert failed(verdict) == {"test_parameter_count"}
    assert "is rounded" in parameter_count_problem(f"| Total Model Parameters | {rounded} |", count)
