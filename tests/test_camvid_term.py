"""A real-data term end to end: the course declared on CamVid (real photos, ``shared/data``) with tiers of its own,
released by the instructor's own command with validation on (``release`` trains the reference in the term's setting,
on a shorter recipe declared here, and validates the source on CamVid and the declared tiers), then a class collected
from a Canvas zip, graded, given feedback and exported. Skips cleanly when the file is absent.

The class:
    ada   the reference code and answers, and the reference release trained    her recomputed mIoU decides her tiers
    bo    ada's code with a model that answers the validation masks from its buffers      no tier
    cy    ada's code with a model that reads the CamVid file at grading time             no tier (the file is hidden)
    dan   ada's code and a checkpoint made in the default setting (synthetic, 64x64)     named as such in his row
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch

from adversarial import lookup_checkpoint, lookup_model_code
from autograder.course import Course
from classes import ASSIGNMENT, ON_TIME, TIERS, points_without, student_notebook
from autograder.heldout import HELDOUT_GAP

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "data" / "camvid_seg96x128.npz"
# The one test-only recipe override (release's train_overrides): QUICK for 10 epochs instead of 5 on CamVid, where 5
# end near 0.25 and the source's visible tier cells still assert the homework's 0.35 (the notebook is wired to the
# declared tiers in a later round). Seed 0, one thread: the reference ends at 0.388 (0.35 first crossed at epoch 6);
# both models take about 1 + 3 min on a 2-core CPU, more under load. The cap is on these figures (20 min per model),
# not on QUICK's synthetic ones. The term's top tier is its own, 0.36, so the declared tiers are what grades.
CAMVID_TRAINING = {"num_epochs": 10, "max_seconds": 20 * 60, "expected_epoch_seconds": 6}
CAMVID_TIERS = 'tiers = { target = 0.15, good = 0.25, excellent = 0.36 }\n'


def canvas_zip(path: Path, submissions: dict[str, dict[str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for i, (student, files) in enumerate(submissions.items()):
            user, sub = 7000 + i, 9000 + i
            for name, data in files.items():
                archive.writestr(f"{student}_{user}_{sub}_{name}", data)
        archive.writestr("timestamps.csv", "student_id,timestamp\n" + "".join(f"{s},{ON_TIME}\n" for s in submissions))


@pytest.fixture(scope="module")
def camvid_term(tmp_path_factory):
    if not CAMVID.is_file():
        pytest.skip(f"no CamVid file at {CAMVID}")
    from autograder.collect import collect
    from autograder.export import export
    from autograder.feedback import feedback
    from autograder.pipeline import GradeOptions, grade
    from autograder.reference.segmentation_hw import SegmentationModel
    from autograder.release import release
    from course_lib.data import DataSource, load_synthetic
    from course_lib.models import count_parameters
    from course_lib.submission import results_table, save_submission
    from course_lib.train.recipes import QUICK

    root = tmp_path_factory.mktemp("camvid")
    course = Course.create(root / "course", [ASSIGNMENT])
    (course.root / "course.toml").write_text(f'[grading]\ndata = "camvid:{CAMVID}"\nimage_size = [96, 128]\n'
                                             f'mode = "QUICK"\n{CAMVID_TIERS}')
    said = []
    release(course, [ASSIGNMENT], train_overrides=CAMVID_TRAINING, log=said.append)  # validation on

    source = DataSource.parse(f"camvid:{CAMVID}")
    val = source.load("val", (96, 128))
    honest = course.root / "source" / ASSIGNMENT  # the reference release trained: ada hands it in
    metrics = json.loads((honest / f"{ASSIGNMENT}_results.json").read_text())["metrics"]

    solved = {"residual_block", "segmentation_model"}
    notebook = student_notebook(course, solved, True, metrics)
    files = {"ada": {f"{ASSIGNMENT}.ipynb": nbformat.writes(notebook).encode(),
                     f"{ASSIGNMENT}_checkpoint.pt": (honest / f"{ASSIGNMENT}_checkpoint.pt").read_bytes(),
                     f"{ASSIGNMENT}_results.json": (honest / f"{ASSIGNMENT}_results.json").read_bytes()}}
    for student, read_from in (("bo", None), ("cy", str(source))):
        cheat = student_notebook(course, solved, True, metrics)
        cell = next(c for c in cheat.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "segmentation_model")
        cell.source += lookup_model_code(read_from)
        folder = root / student
        folder.mkdir()
        lookup_checkpoint(folder / "checkpoint.pt", val, remember=read_from is None)
        files[student] = {f"{ASSIGNMENT}.ipynb": nbformat.writes(cheat).encode(),
                          f"{ASSIGNMENT}_checkpoint.pt": (folder / "checkpoint.pt").read_bytes()}
    default = root / "dan"
    default.mkdir()
    torch.manual_seed(1)
    synthetic_model = SegmentationModel(**QUICK.model_kwargs)
    save_submission(synthetic_model, dict(QUICK.model_kwargs), {**metrics, "num_parameters": count_parameters(synthetic_model)},
                    default, ASSIGNMENT, data=load_synthetic("val", num_images=4), mode="QUICK")
    dan_metrics = json.loads((default / f"{ASSIGNMENT}_results.json").read_text())["metrics"]
    files["dan"] = {f"{ASSIGNMENT}.ipynb": nbformat.writes(student_notebook(course, solved, True, dan_metrics)).encode(),
                    f"{ASSIGNMENT}_checkpoint.pt": (default / f"{ASSIGNMENT}_checkpoint.pt").read_bytes(),
                    f"{ASSIGNMENT}_results.json": (default / f"{ASSIGNMENT}_results.json").read_bytes()}
    canvas_zip(root / "canvas.zip", files)
    collect(course, ASSIGNMENT, root / "canvas.zip", log=lambda *a: None)
    results = {r.student: r for r in grade(course, ASSIGNMENT, opts=GradeOptions(workers=2), log=lambda *a: None)}
    pages = feedback(course, ASSIGNMENT, log=lambda *a: None, provisional=True)  # no TA grades written answers here
    summaries = export(course, [ASSIGNMENT], log=lambda *a: None)
    return {"course": course, "results": results, "metrics": metrics, "pages": pages, "summaries": summaries,
            "results_table": results_table(metrics), "said": "\n".join(map(str, said))}


def tiers_missed(course, miou: float) -> set[str]:
    """The tier checks a checkpoint of this ``miou`` fails, by the term's declared tiers."""
    from autograder.term import GradedSetting

    tiers = GradedSetting.read(course.root).tiers
    return {f"test_miou_{name}" for name in tiers.names() if name not in tiers.reached(miou)}


def test_release_prepared_the_declared_term_with_validation_on(camvid_term):
    said, course = camvid_term["said"], camvid_term["course"]
    assert "term: camvid at 96x128, QUICK mode" in said and "0.36 (excellent)" in said
    assert "training the reference for this term (camvid at 96x128, QUICK mode)" in said
    assert "both reference models will take about" in said and "reference trained in" in said
    assert "segmentation_hw: source validates on this term (every test passes)" in said
    assert "release runs to the end and fails every test" in said
    assert "marked released in formgrader" in said and "release OK" in said
    assert "calibration of this term" in said and re.search(r"excellent 0\.36: \d+ / never", said), said
    results = json.loads((course.root / "source" / ASSIGNMENT / f"{ASSIGNMENT}_nodown_results.json").read_text())
    assert results["mode"] == "QUICK" and results["model_kwargs"]["num_classes"] == 11
    assert results["measured_on"]["dataset"] == "camvid" and results["measured_on"]["image_size"] == [96, 128]
    assert len(results["history"]["records"]) == CAMVID_TRAINING["num_epochs"]


def test_the_honest_student_is_graded_on_the_real_validation_split(camvid_term):
    ada, metrics, course = camvid_term["results"]["ada"], camvid_term["metrics"], camvid_term["course"]
    miou = ada.miou
    assert miou.heldout_kind == "secretly transformed copies of the validation images"
    assert abs(miou.public - metrics["miou"]) < 1e-3, (miou, metrics)  # the grader recomputes her own figure
    assert miou.public - miou.heldout < HELDOUT_GAP and miou.effective == miou.heldout  # the held-out figure decides
    assert tiers_missed(course, metrics["miou"]) == set(), f"the term's reference should reach every tier: {metrics}"
    assert ada.failed == tiers_missed(course, miou.heldout), ada.checks
    assert ada.auto_points == points_without(ASSIGNMENT, ada.failed)
    assert ada.check("test_miou_excellent").message.endswith(">= 0.36")  # the term's tier, not 0.35
    assert ada.notes == () and ada.status == "graded"


@pytest.mark.parametrize("student", ["bo", "cy"])
def test_memorised_or_read_labels_gain_no_tier_on_real_photos(camvid_term, student):
    row = camvid_term["results"][student]
    assert set(TIERS) <= row.failed and all(row.check(gid).points == 0 for gid in TIERS), row.checks
    assert row.miou.effective < 0.15
    if row.miou.public > 0.99:  # where the lookup reached the labels, the held-out copies caught it
        assert "secretly transformed copies" in row.check("test_miou_target").message
    assert row.check("test_residual_block").passed and row.check("test_answers_complete").passed


def test_a_checkpoint_made_for_another_setting_is_named_in_its_row(camvid_term):
    dan = camvid_term["results"]["dan"]
    assert any("made for synthetic at 64x64, QUICK mode" in p and "grades camvid at 96x128, QUICK mode" in p
               for p in dan.problems), dan.problems
    assert "made for synthetic at 64x64" in dan.check("test_miou_target").message


def test_feedback_and_export_cover_the_whole_real_data_class(camvid_term):
    course = camvid_term["course"]
    for student in ("ada", "bo", "cy", "dan"):
        assert (course.root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file()
    grades = (course.root / "grading" / "export" / f"{ASSIGNMENT}_scores.csv").read_text()
    assert all(student in grades for student in ("ada", "bo", "cy", "dan"))
    assert camvid_term["summaries"][ASSIGNMENT]["tier_counts"] == {"tier 0.15": 1, "tier 0.25": 1, "tier 0.36": 1}
