"""Assignment 2 (segmentation concepts): the notebook in sync with the grader's reference, every topic of the
source material covered, the source executes in minutes and validates, the release fails every test, and every
hidden check passes on the reference and fails on a planted bug."""

import re
import shutil

import nbformat
import pytest

from autograder.checks.segmentation_concepts import CHECKS, TOPICS
from autograder.judge import judge_submission
from inprocess import run_in_process
from notebooks import REPO, cells_by_id, error_outputs, execute_notebook, make_course, \
    reference_mismatches, stream_outputs

ASSIGNMENT = "segmentation_concepts"
SOURCE = REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SEEDS = REPO.parent / "shared" / "seeds" / "segmentation_concepts.txt"


@pytest.fixture(scope="module")
def source_nb():
    return nbformat.read(SOURCE, as_version=4)


def test_reference_solutions_are_identical_to_the_notebook_solutions():
    reference = REPO / "autograder" / "reference" / "segmentation_concepts.py"
    assert reference_mismatches(SOURCE, reference, {gid: gid for gid in TOPICS}) == []


def test_one_hidden_check_per_autograded_cell_and_an_answer_per_topic(source_nb):
    cells = cells_by_id(source_nb)
    tests = {g for g, c in cells.items() if c.cell_type == "code" and c.metadata["nbgrader"].get("grade")}
    assert tests == set(CHECKS)
    answers = [g for g, c in cells.items() if c.cell_type == "markdown" and c.metadata["nbgrader"].get("solution")]
    assert answers == [f"q{n}_answer" for n in range(1, 11)]


TOPIC_WORDS = {  # each question of the source material: words that carry its intent
    1: ["semantic", "instance", "panoptic", "things", "stuff"],
    2: ["U-Net", "skip connections", "medical"],
    3: ["Mask R-CNN", "Faster R-CNN", "RoIAlign", "RoIPool", "predicted"],
    4: ["Dice", "cross-entropy", "focal", "Tversky"],
    5: ["DeepLab", "atrous", "ASPP"],
    6: ["pixel accuracy", "mIoU", "Dice", "mask AP", "panoptic quality", "boundary F1"],
    7: ["Segment Anything", "SAM", "significant"],
    8: ["transposed convolution", "bilinear", "PixelShuffle", "checkerboard"],
    9: ["class imbalance", "tumour", "OHEM", "median"],
    10: ["SegFormer", "spatial reduction", "Mix-FFN", "all-MLP decoder"],
}


def test_every_topic_of_the_source_material_is_covered(source_nb):
    if SEEDS.is_file():
        assert [int(n) for n in re.findall(r"^Q(\d+):", SEEDS.read_text(), flags=re.M)] == list(TOPIC_WORDS)
    sections = "\n".join(c.source for c in source_nb.cells).split("\n## ")
    for n, words in TOPIC_WORDS.items():
        section = next(s for s in sections if s.startswith(f"{n}. "))
        assert f"**Question {n}.**" in section
        for word in words:
            assert word.lower() in section.lower(), f"topic {n} does not mention {word!r}"


@pytest.mark.slow
def test_source_executes_validates_and_release_fails_every_test(tmp_path):
    course = make_course(tmp_path, [ASSIGNMENT])
    notebook = course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = execute_notebook(notebook, timeout=300)
    # What `nbgrader validate` checks on the source, read from this one execution: every cell ran, no test cell
    # raised (its hidden region is the judge's verdict), nothing went to stderr (nbgrader's zero).
    assert error_outputs(nb) == [] and stream_outputs(nb, "stderr") == ""
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert tests and all(c.get("execution_count") for c in tests)
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy(REPO / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", release)
    shutil.copy(REPO / "nbgrader_config.py", release)
    # The release's validation (nbgrader's Validator through its API): every test fails and nothing else does, which
    # is what `nbgrader validate --invert` accepts (one run of the release instead of two).
    from autograder.release import validation_problems

    failing = validation_problems(release / f"{ASSIGNMENT}.ipynb", REPO)
    tests = [c for c in nbformat.read(release / f"{ASSIGNMENT}.ipynb", as_version=4).cells
             if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")]
    assert all(line.startswith("failed: ") for line in failing) and "\x1b" not in "".join(failing), failing
    assert sum(line.startswith("failed: # Autograded") for line in failing) == len(tests) == len(CHECKS), failing


@pytest.fixture(scope="module")
def reference(released_concepts, tmp_path_factory):
    from autograder.course import Course
    from classes import student_notebook

    course = Course(released_concepts)  # read only
    folder = tmp_path_factory.mktemp("concepts_reference")
    nb = student_notebook(course, set(TOPICS), True, None, ASSIGNMENT)
    nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    return folder


def judge_with(reference, tmp_path, cell, old, new):
    folder = tmp_path / "planted"
    shutil.copytree(reference, folder)
    path = folder / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, as_version=4)
    target = cells_by_id(nb)[cell]
    assert old in target.source, f"{old!r} not in {cell}"
    target.source = target.source.replace(old, new, 1)
    nbformat.write(nb, path)
    verdict = judge_submission(folder, ASSIGNMENT, run=run_in_process)  # the sandbox's runner in this process
    return {g for g, r in verdict.checks.items() if not r.passed}, verdict


@pytest.mark.slow
def test_reference_passes_every_check(reference):
    verdict = judge_submission(reference, ASSIGNMENT)
    assert all(r.passed for r in verdict.checks.values()), {g: r.message for g, r in verdict.checks.items() if not r.passed}


PLANTED = {
    "test_t1_panoptic": ("t1_panoptic", "    panoptic[is_thing] = -1", "    pass"),
    "test_t2_unet": ("t2_unet", 'mode="replicate"', "value=0.0"),  # the image edge drawn as a boundary
    "test_t3_roi_align": ("t3_roi_align", "[float(v) - 0.5 for v in box]", "[float(v) for v in box]"),
    "test_t4_losses": ("t4_losses", "alpha_t = alpha * targets + (1 - alpha) * (1 - targets)", "alpha_t = alpha"),
    "test_t5_atrous": ("t5_atrous", "field += (kernel - 1) * dilation * jump", "field += (kernel - 1) * dilation"),
    "test_t6_metrics": ("t6_metrics", "iou = torch.where(tp + fp + fn > 0, tp / (tp + fp + fn).clamp(min=1), nan)",
                        "iou = tp / (tp + fp + fn).clamp(min=1)"),
    "test_t7_sam": ("t7_sam", "descending=True, stable=True", "descending=False, stable=True"),
    "test_t8_upsampling": ("t8_upsampling", "coverage[i * stride + k] += 1", "coverage[i + k] += 1"),
    "test_t9_imbalance": ("t9_imbalance", "counts.sum(0)[occurs] / exposure[occurs]",
                          "counts.sum(0)[occurs] / image_pixels.sum()"),
    "test_t10_segformer": ("t10_segformer", "keys = num_tokens // sr_ratio**2", "keys = num_tokens // sr_ratio"),
}


@pytest.mark.slow
@pytest.mark.parametrize("check", sorted(PLANTED))
def test_each_check_fails_on_its_planted_bug(reference, tmp_path, check):
    failed, verdict = judge_with(reference, tmp_path, *PLANTED[check])
    assert failed == {check}, {g: verdict.checks[g].message for g in failed}


@pytest.mark.slow
def test_answers_check_fails_on_a_placeholder(reference, tmp_path):
    answer = cells_by_id(nbformat.read(reference / f"{ASSIGNMENT}.ipynb", as_version=4))["q5_answer"].source
    failed, verdict = judge_with(reference, tmp_path, "q5_answer", answer, "YOUR ANSWER HERE")
    assert failed == {"test_answers_complete"}


@pytest.mark.slow
def test_calling_course_lib_instead_of_writing_the_code_earns_nothing(reference, tmp_path):
    failed, verdict = judge_with(reference, tmp_path, "t6_metrics", "def iou_and_dice(confusion):",
                                 "from course_lib.metrics import iou_per_class\n\n\ndef iou_and_dice(confusion):")
    assert failed == {"test_t6_metrics"} and "uses ['course_lib']" in verdict.checks["test_t6_metrics"].message
    failed, verdict = judge_with(reference, tmp_path / "b", "t6_metrics", "    cm = confusion.double()",
                                 "    return metrics.iou_per_class(confusion), metrics.iou_per_class(confusion)")
    assert failed == {"test_t6_metrics"} and "uses ['metrics']" in verdict.checks["test_t6_metrics"].message


def test_every_check_has_a_planted_bug():
    assert set(PLANTED) | {"test_answers_complete"} == set(CHECKS)


@pytest.mark.slow
def test_correct_code_with_local_names_like_the_oracle_modules_gets_full_points(reference, tmp_path):
    """A correct focal loss that keeps its per-element values in `losses`, and a correct IoU/Dice whose results sit in
    a local `metrics`, earn every point (the own-code rule flags only real use of an oracle)."""
    folder = tmp_path / "renamed"
    shutil.copytree(reference, folder)
    path = folder / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cells = cells_by_id(nb)
    focal, metrics_cell = cells["t4_losses"], cells["t6_metrics"]
    focal.source = focal.source.replace("    return (alpha_t * (1 - p_t) ** gamma * bce).mean()",
                                        "    losses = alpha_t * (1 - p_t) ** gamma * bce\n    return losses.mean()", 1)
    metrics_cell.source = metrics_cell.source.replace("    return iou, dice\n",
                                                      "    metrics = {'iou': iou, 'dice': dice}\n"
                                                      "    return metrics['iou'], metrics['dice']\n", 1)
    assert "losses.mean()" in focal.source and "metrics['iou']" in metrics_cell.source
    nbformat.write(nb, path)
    verdict = judge_submission(folder, ASSIGNMENT)
    assert all(r.passed for r in verdict.checks.values()), {g: r.message for g, r in verdict.checks.items() if not r.passed}


@pytest.mark.slow
def test_a_source_notebooks_hidden_test_is_the_judges_verdict(reference, tmp_path):
    """What a hidden region runs (``autograder.hidden.hidden_check``): passes where the judge passes, fails with
    the judge's own message where it fails; one judge run serves every cell of a saved state."""
    from autograder import hidden

    assert "IoU and Dice per class right" in hidden.hidden_check(ASSIGNMENT, "test_t6_metrics", reference)
    failed, verdict = judge_with(reference, tmp_path, *PLANTED["test_t10_segformer"])
    with pytest.raises(AssertionError) as err:
        hidden.hidden_check(ASSIGNMENT, "test_t10_segformer", tmp_path / "planted")
    assert verdict.checks["test_t10_segformer"].message in str(err.value)
    hidden.hidden_check(ASSIGNMENT, "test_t1_panoptic", tmp_path / "planted")  # the other checks still pass
    assert hidden._verdict.cache_info().currsize == 1 and hidden._verdict.cache_info().hits >= 1
    with pytest.raises(KeyError, match="declares no check"):
        hidden.hidden_check(ASSIGNMENT, "test_nothing", reference)
