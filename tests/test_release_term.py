"""``release`` prepares the declared term (nothing trains here; two tests are slow: nbgrader runs, timed probes).
A reference made for another setting is refused with the reason; a release that fails is never marked released in
formgrader; a GPU recipe is not trained on a CPU without being asked; the source runs with the term's parameters
injected; the calibration table reads the reference's curves and warns when the tiers do not discriminate. The
CamVid term released with validation on: ``tests/test_camvid_term.py``."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from autograder.checks import get_assignment
from autograder.course import Course
from classes import ASSIGNMENT, CONCEPTS
from autograder.release import ReleaseError, release
from autograder.term import GradedSetting
from autograder.term_reference import INJECTED_TAG, ReferenceError, calibration, ensure_reference, parametrised
from course_lib.data import DataSource, load_synthetic
from course_lib.term import Tiers
from test_data import build_voc_tree


def voc_course(tmp_path: Path, mode: str = "FULL", extra: str = ""):
    build_voc_tree(tmp_path / "voc")
    course = Course.create(tmp_path / "course", [ASSIGNMENT, CONCEPTS])
    (course.root / "course.toml").write_text(f'[grading]\ndata = "voc:{tmp_path / "voc"}"\nimage_size = 32\n'
                                             f'mode = "{mode}"\n{extra}')
    return course


def synthetic_reference(folder: Path) -> Path:
    """Reference files made for the default setting (synthetic, 64x64, QUICK, 21 classes), untrained."""
    from autograder.reference.segmentation_hw import SegmentationModel
    from course_lib.submission import save_submission
    from course_lib.train.recipes import QUICK

    folder.mkdir(parents=True, exist_ok=True)
    val = load_synthetic("val", num_images=4)
    for name, downsample in (("segmentation_hw", True), ("segmentation_hw_nodown", False)):
        kwargs = dict(QUICK.model_kwargs, downsample=downsample)
        metrics = {"miou": 0.1, "pixel_accuracy": 0.5, "num_parameters": 1, "training_minutes": 1.0}
        save_submission(SegmentationModel(**kwargs), kwargs, metrics, folder, name, data=val, mode="QUICK")
    return folder


def test_a_reference_made_for_another_setting_is_refused_before_anything_runs(tmp_path):
    course = voc_course(tmp_path)
    reference = synthetic_reference(tmp_path / "elsewhere")
    with pytest.raises(ReleaseError) as caught:
        release(course, [ASSIGNMENT], reference=reference, log=lambda *a: None)
    message = str(caught.value)
    assert f"--reference {reference} refused" in message
    for part in ("data set synthetic (this term: voc)", "image size 64x64 (this term: 32x32)",
                 "mode QUICK (this term: FULL)", "This term is voc at 32x32, FULL mode with 21 classes"):
        assert part in message, message
    assert not (course.root / "release").exists() and not (course.root / "exchange").exists()
    from autograder.cli import main

    assert main(["--course", str(course.root), "release", ASSIGNMENT, "--reference", str(reference)]) == 2


def test_a_reference_missing_a_file_is_refused_naming_it(tmp_path):
    course = voc_course(tmp_path)
    reference = synthetic_reference(tmp_path / "elsewhere")
    (reference / "segmentation_hw_nodown_results.json").unlink()
    with pytest.raises(ReleaseError, match="segmentation_hw_nodown_results.json missing"):
        release(course, [ASSIGNMENT], reference=reference, log=lambda *a: None)


@pytest.mark.slow  # four nbgrader runs
def test_a_release_that_fails_validation_is_not_marked_released(tmp_path, monkeypatch):
    import autograder.release as release_module

    course = Course.create(tmp_path / "course", [ASSIGNMENT, CONCEPTS])
    monkeypatch.setattr(release_module, "_validate", lambda *a, **k: [f"{ASSIGNMENT}: the source does not validate"])
    lines = []
    with pytest.raises(ReleaseError, match="the source does not validate"):
        release(course, [ASSIGNMENT], log=lines.append)
    assert f"{ASSIGNMENT}: NOT marked released in formgrader (it failed above)" in lines
    assert not list((course.root / "exchange").rglob(f"outbound/{ASSIGNMENT}"))
    release(course, [ASSIGNMENT], validate=False, log=lambda *a: None)  # the same course, nothing failing: released
    assert list((course.root / "exchange").rglob(f"outbound/{ASSIGNMENT}"))


@pytest.mark.slow  # the estimate's timed probes train a few steps
def test_a_gpu_recipe_is_not_trained_on_a_cpu_unless_asked_and_the_estimate_says_how_long(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    course = voc_course(tmp_path)
    setting = GradedSetting.read(course.root)
    lines = []
    never = lambda *a, **k: pytest.fail("nothing may train")  # noqa: E731
    with pytest.raises(ReferenceError) as caught:
        ensure_reference(course.root, get_assignment(ASSIGNMENT), setting, never, lines.append)
    said = "\n".join(lines)
    assert "training the reference for this term (voc at 32x32, FULL mode), because segmentation_hw_checkpoint.pt" in said
    assert "both reference models will take about" in said and "an estimate from" in said
    assert "meant for a GPU" in str(caught.value) and "--reference DIR" in str(caught.value)
    assert "--allow-cpu" in str(caught.value)


def test_the_source_runs_with_the_terms_parameters_injected(tmp_path):
    course = voc_course(tmp_path, "QUICK")
    setting = GradedSetting.read(course.root)
    source = course.root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    table = "| Metric | Value |\n|--------|-------|\n| Final Validation mIoU | 0.4242 |"
    out = parametrised(source, tmp_path / "copy.ipynb", setting, {"num_epochs": 2}, table, "q1_results_table")
    cells = nbformat.read(out, as_version=4).cells
    injected = [i for i, c in enumerate(cells) if INJECTED_TAG in c.metadata.get("tags", [])]
    params = next(i for i, c in enumerate(cells) if c.source.startswith("MODE ="))
    setup = next(i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    assert injected == [params + 1, setup + 1]
    assert f"MODE = 'QUICK'\nDATA = 'voc:{tmp_path / 'voc'}'\nIMAGE_SIZE = 32" in cells[params + 1].source
    assert "**{'num_epochs': 2}" in cells[setup + 1].source
    q1 = next(c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == "q1_results_table")
    assert "| Final Validation mIoU | 0.4242 |" in q1.source and "0.5349" not in q1.source
    assert "Model answer" in q1.source  # the prose of the model answer stays
    namespace = {}
    exec(cells[params].source + "\n" + cells[params + 1].source, namespace)  # the injected values win
    assert (namespace["MODE"], namespace["DATA"], namespace["IMAGE_SIZE"]) == ("QUICK", f"voc:{tmp_path / 'voc'}", 32)


def write_curves(folder: Path, with_down: list[float], without: list[float], setting: GradedSetting) -> None:
    for name, curve in (("segmentation_hw", with_down), ("segmentation_hw_nodown", without)):
        records = [{"epoch": e + 1, "val_miou": m} for e, m in enumerate(curve)]
        (folder / f"{name}_results.json").write_text(json.dumps({
            "history": {"records": records}, "mode": setting.mode,
            "measured_on": {"dataset": "synthetic", "image_size": [64, 64], "num_classes": 21}}))


@pytest.mark.parametrize("curve, warning", [
    ([0.1, 0.2, 0.3, 0.36, 0.4, 0.41], None),
    ([0.2, 0.3, 0.4, 0.45, 0.5, 0.55], "crosses the top tier (excellent 0.35) at epoch 3 of 6, before half its recipe"),
    ([0.1, 0.12, 0.16, 0.2, 0.26, 0.3], "never reaches the top tier (excellent 0.35; it ends at 0.3000)"),
])
def test_the_calibration_table_shows_when_each_tier_is_crossed_and_warns(tmp_path, curve, warning):
    setting = GradedSetting(DataSource("synthetic"), (64, 64), "QUICK")
    write_curves(tmp_path, curve, [0.1, 0.12, 0.14, 0.16, 0.18, 0.2], setting)
    calibrated = calibration(tmp_path, get_assignment(ASSIGNMENT), setting)
    table = calibrated.table()
    assert "epoch  with downsampling  without downsampling" in table and f"{curve[0]:.4f}" in table
    first_target = next(e + 1 for e, m in enumerate(curve) if m >= 0.15)
    assert f"target 0.15: {first_target} / 4" in table and "good 0.25: " in table  # the variant: 0.16 at epoch 4
    assert len(calibrated.warnings) == (warning is not None)
    if warning:
        assert warning in table


def test_declared_tiers_reach_the_calibration(tmp_path):
    setting = GradedSetting(DataSource("synthetic"), (64, 64), "QUICK", tiers=Tiers(0.1, 0.2, 0.5))
    write_curves(tmp_path, [0.1, 0.2, 0.3, 0.36, 0.4, 0.41], [0.1] * 6, setting)
    calibrated = calibration(tmp_path, get_assignment(ASSIGNMENT), setting)
    assert calibrated.crossed == {"target": 1, "good": 2, "excellent": None}
    assert "never reaches the top tier (excellent 0.5" in calibrated.table()
