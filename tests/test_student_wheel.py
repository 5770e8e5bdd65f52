"""No concepts oracle reaches students (issue 25): neither ``course_lib``'s source nor the student wheel built from
it defines a graded concepts function (by name) or holds the code of one (``source_scan``: token runs, identifiers
ignored). ``course_lib`` keeps what the homework needs: the confusion matrix and the IoU figures derived from it,
and the training losses ``TrainConfig.loss`` names (multi-class softmax losses, not the binary exercises)."""

from __future__ import annotations

import ast
import re
import zipfile

import pytest

from notebooks import REPO
from source_scan import MIN_RUNS, functions, present, runs

GRADER = {p.relative_to(REPO).as_posix(): p.read_text()
          for p in [REPO / "autograder" / "reference" / "segmentation_concepts.py",
                    *sorted((REPO / "autograder" / "oracles").glob("*.py"))]}
# Every function a concepts exercise asks for, every oracle function, and the names the oracles had in course_lib.
GRADED_NAMES = {name for source in GRADER.values() for name in functions(source) if not name.startswith("_")} | {
    "binary_boundary_f1", "class_weights", "class_frequencies", "dice_per_class", "mean_dice", "binary_dice_loss"}


def defined_names(sources: dict[str, str]) -> set[str]:
    return {node.name for source in sources.values() for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def check_package(sources: dict[str, str]) -> None:
    assert sources, "no module to check"
    clash = defined_names(sources) & GRADED_NAMES
    assert not clash, f"graded concepts functions shipped to students: {sorted(clash)}"
    copies = present(GRADER, sources)
    assert not copies, f"the code of graded concepts functions shipped to students: {copies}"


def test_the_graded_names_cover_every_exercise():
    assert {"panoptic_quality", "boundary_f1", "mask_boundary", "mask_ap", "average_precision", "median_frequency_weights",
            "sigmoid_focal_loss", "binary_tversky_loss", "reduced_attention", "depthwise_conv3x3",
            "fourier_point_encoding", "ohem_keep_mask", "iou_and_dice"} <= GRADED_NAMES


def test_course_lib_defines_no_graded_concepts_function_and_holds_none_of_their_code():
    check_package({p.relative_to(REPO).as_posix(): p.read_text() for p in (REPO / "course_lib").rglob("*.py")})


def test_the_scan_finds_an_oracle_copied_under_other_names():
    """The detector works: each oracle module, its functions and variables renamed, is still found function by
    function; a module of unrelated code is not."""
    for label, source in GRADER.items():
        if not label.startswith("autograder/oracles/") or label.endswith("__init__.py"):
            continue
        renamed = re.sub(r"\bdef (\w+)", r"def copied_\1", source)
        renamed = re.sub(r"\b(pred|truth|mask|masks|iou|scores|weights|freq)\b", r"\1_x", renamed)
        found = {graded.split(":")[1] for graded, _, _ in present({label: source}, {"student.py": renamed})}
        expected = {name for name, body in functions(source).items() if len(runs(body)) >= MIN_RUNS}
        assert expected and found == expected, (label, expected - found)
    assert present(GRADER, {"unrelated.py": (REPO / "course_lib" / "data" / "synthetic.py").read_text()}) == []


@pytest.mark.slow
def test_the_student_wheel_holds_no_concepts_oracle(repo, tmp_path):
    from test_setup import _wheel_files

    names = _wheel_files(repo, tmp_path)
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        sources = {n: archive.read(n).decode() for n in names if n.endswith(".py")}
    assert "course_lib/metrics/confusion.py" in sources  # the homework's metrics are there
    for gone in ("course_lib/metrics/boundary.py", "course_lib/metrics/panoptic.py", "course_lib/metrics/instance.py",
                 "course_lib/losses/weights.py"):
        assert gone not in sources
    check_package(sources)
