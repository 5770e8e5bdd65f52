"""Assignment 1 as files (and, where parametrized, Assignment 2): solutions in sync with the grader's reference, release in sync with source, no leaks,
every question of the sheet asked. (Execution of the notebook is in test_hw_execution.py.)"""

import re

import nbformat
import pytest

from autograder.leaks import scan, secret_lines
from notebooks import (
    ASSIGNMENTS, REPO, cells_by_id, hidden_regions, make_course, nbgrader, normalized, reference_mismatches,
    solution_regions,
)

SOURCE = REPO / "source" / "segmentation_hw" / "segmentation_hw.ipynb"
RELEASE = REPO / "release" / "segmentation_hw" / "segmentation_hw.ipynb"
SEEDS = REPO.parent / "shared" / "seeds" / "homework_questions.md"


@pytest.fixture(scope="module")
def source_nb():
    return nbformat.read(SOURCE, as_version=4)


def test_reference_solution_is_identical_to_the_notebook_solution():
    reference = REPO / "autograder" / "reference" / "segmentation_hw.py"
    blocks = {"residual_block": "ResidualBlock", "segmentation_model": "SegmentationModel"}
    assert reference_mismatches(SOURCE, reference, blocks) == []


def test_nbgrader_metadata_is_complete(source_nb):
    cells = cells_by_id(source_nb)
    assert len(cells) == len([c for c in source_nb.cells if "nbgrader" in c.metadata])
    tests = {g: c for g, c in cells.items() if c.metadata["nbgrader"].get("grade") and c.cell_type == "code"}
    from autograder.checks.segmentation_hw import CHECKS

    assert set(tests) == set(CHECKS), "one hidden check per autograded cell, named after its grade_id"
    assert all(hidden_regions(c.source) for c in tests.values())
    manual = [g for g, c in cells.items() if c.cell_type == "markdown" and c.metadata["nbgrader"].get("solution")]
    assert len(manual) == 12 and all(cells[g].metadata["nbgrader"]["points"] > 0 for g in manual)
    assert all(solution_regions(cells[g].source) for g in ("residual_block", "segmentation_model"))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_regenerated_from_source_exactly(tmp_path, assignment):
    course = make_course(tmp_path, [assignment])
    nbgrader("generate_assignment", assignment, "--force", cwd=course)
    fresh = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    committed = nbformat.read(REPO / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    assert normalized(fresh) == normalized(committed), "release/ is stale: run `make release` and commit it"
    assert sorted(p.name for p in (course / "release" / assignment).iterdir()) == \
        sorted(p.name for p in (REPO / "release" / assignment).iterdir())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_answer_or_hidden_test_leaks_into_release_or_course_lib(assignment):
    secrets = secret_lines(REPO / "source" / assignment / f"{assignment}.ipynb")
    assert len(secrets) > 50
    assert scan([REPO / "release" / assignment, REPO / "course_lib"], secrets) == []


def test_release_has_stubs_placeholders_and_no_hidden_tests():
    release = nbformat.read(RELEASE, as_version=4)
    cells = cells_by_id(release)
    assert "raise NotImplementedError()" in cells["residual_block"].source
    assert "raise NotImplementedError()" in cells["segmentation_model"].source
    assert all("HIDDEN" not in c.source for c in release.cells)
    answers = [c for c in release.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")]
    assert answers and all(c.source.strip() == "YOUR ANSWER HERE" for c in answers)


# Each question of the sheet: its number and words that carry its intent and numbers.
QUESTIONS = {
    1: ["results table", "mIoU", "Pixel Accuracy", "Parameters", "Training Time (minutes)"],
    2: ["0.15", "0.25", "0.35", "success criteria"],
    3: ["with or without downsampling", "why"],
    4: ["architecture", "SegmentationModel", "How many residual blocks"],
    # Q5's hint is reworded on purpose: the sheet's hint mixes the residual shortcut up with the encoder-decoder
    # skips that carry spatial detail; ours asks about the gradient's path and names the difference.
    5: ["ResidualBlock", "backpropagation", "gradient", "shortcut", "not the\nsame thing as the encoder–decoder skip"],
    6: ["21 channels", "instead of 1", "computational trade-offs", "classification model"],
    7: ["64×64", "segmentation", "classification"],
    8: ["training curves", "overfitting", "underfitting"],
    9: ["mIoU stand for", "calculated"],
    10: ["mIoU", "better metric than pixel accuracy", "class imbalance", "background vs object pixels"],
    11: ["mobile app", "limited computing power"],
    12: ["two specific improvements", "architecture improvement", "training improvement"],
}


def test_every_question_of_the_sheet_is_asked(source_nb):
    if SEEDS.is_file():  # the sheet has exactly these twelve numbered questions
        numbers = [int(n) for n in re.findall(r"^\s*(\d+)\. \*\*", SEEDS.read_text(), flags=re.M)]
        assert numbers == list(QUESTIONS)
    text = "\n".join(c.source for c in source_nb.cells)
    for number, phrases in QUESTIONS.items():
        block = text.split(f"**Q{number}.**")
        assert len(block) == 2, f"Q{number} must be asked exactly once"
        asked = block[1][:1200]
        for phrase in phrases:
            assert phrase.lower() in asked.lower(), f"Q{number} does not mention {phrase!r}"
