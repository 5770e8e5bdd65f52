"""A real-data term end to end: the course declared on CamVid (real photos, ``shared/data``), a class trained briefly
on it, collected from a Canvas zip, graded, given feedback and exported. Skips cleanly when the file is absent.

The class:
    ada   the reference code and answers, trained 4 epochs on CamVid     her recomputed mIoU decides her tiers
    bo    ada's code with a model that answers the validation masks from its buffers      no tier
    cy    ada's code with a model that reads the CamVid file at grading time             no tier (the file is hidden)
    dan   ada's code and a checkpoint made in the default setting (synthetic, 64x64)     named as such in his row
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
import torch

from adversarial import lookup_checkpoint, lookup_model_code
from autograder.demo import ASSIGNMENT, ON_TIME, new_course, student_notebook
from autograder.heldout import HELDOUT_GAP

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "data" / "camvid_seg96x128.npz"
EPOCHS = 4
CODE_AND_ANSWERS = 10 + 10 + 5 + 2  # both classes, the parameter count, the answers


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
    from course_lib.train import evaluate, fit
    from course_lib.train.recipes import QUICK

    root = tmp_path_factory.mktemp("camvid")
    course = new_course(root / "course")
    (course.root / "course.toml").write_text(f'[grading]\ndata = "camvid:{CAMVID}"\nimage_size = [96, 128]\n'
                                             'mode = "QUICK"\n')
    release(course, [ASSIGNMENT], validate=False, log=lambda *a: None)

    source = DataSource.parse(f"camvid:{CAMVID}")
    train, val = source.load("train", (96, 128)), source.load("val", (96, 128))
    kwargs = dict(QUICK.model_kwargs, num_classes=val.num_classes)
    torch.manual_seed(0)
    model = SegmentationModel(**kwargs)
    fit(model, train, val, replace(QUICK.train, num_epochs=EPOCHS, max_seconds=None, progress=False), log=None)
    measured = evaluate(model, val)
    metrics = {"miou": measured.miou, "pixel_accuracy": measured.pixel_accuracy,
               "num_parameters": count_parameters(model), "training_minutes": 1.0}
    honest = root / "ada"
    honest.mkdir()
    save_submission(model, kwargs, metrics, honest, ASSIGNMENT, data=val, mode="QUICK")

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
    results = {r["student"]: r for r in grade(course, ASSIGNMENT, opts=GradeOptions(workers=2), log=lambda *a: None)}
    pages = feedback(course, ASSIGNMENT, log=lambda *a: None)
    summaries = export(course, [ASSIGNMENT], log=lambda *a: None)
    return {"course": course, "results": results, "metrics": metrics, "pages": pages, "summaries": summaries,
            "results_table": results_table(metrics)}


def tiers_of(miou: float) -> int:
    from course_lib.train.recipes import MIOU_TIERS

    return sum(miou >= t for t in MIOU_TIERS.values())


def test_the_honest_student_is_graded_on_the_real_validation_split(camvid_term):
    ada, metrics = camvid_term["results"]["ada"], camvid_term["metrics"]
    miou = ada["miou"]
    assert miou["heldout_kind"] == "secretly transformed copies of the validation images"
    assert abs(miou["public"] - metrics["miou"]) < 1e-3, (miou, metrics)  # the grader recomputes her own figure
    assert miou["public"] - miou["heldout"] < HELDOUT_GAP and miou["effective"] == miou["public"]
    assert tiers_of(metrics["miou"]) >= 1, f"{EPOCHS} epochs on CamVid should reach the first tier: {metrics['miou']}"
    assert ada["auto_points"] == CODE_AND_ANSWERS + 3 + 5 * tiers_of(miou["public"]), ada["checks"]
    assert ada["problems"] == [] and ada["status"] == "graded"


@pytest.mark.parametrize("student", ["bo", "cy"])
def test_memorised_or_read_labels_gain_no_tier_on_real_photos(camvid_term, student):
    row = camvid_term["results"][student]
    for gid in ("test_miou_target", "test_miou_good", "test_miou_excellent"):
        assert row["checks"][gid]["points"] == 0, row["checks"][gid]
    assert row["miou"]["effective"] < 0.15
    if row["miou"]["public"] > 0.99:  # where the lookup reached the labels, the held-out copies caught it
        assert "secretly transformed copies" in row["checks"]["test_miou_target"]["message"]
    assert row["checks"]["test_residual_block"]["points"] == 10 and row["checks"]["test_answers_complete"]["points"] == 2


def test_a_checkpoint_made_for_another_setting_is_named_in_its_row(camvid_term):
    dan = camvid_term["results"]["dan"]
    assert any("made for synthetic at 64x64, QUICK mode" in p and "grades camvid at 96x128, QUICK mode" in p
               for p in dan["problems"]), dan["problems"]
    assert "made for synthetic at 64x64" in dan["checks"]["test_miou_target"]["message"]


def test_feedback_and_export_cover_the_whole_real_data_class(camvid_term):
    course = camvid_term["course"]
    for student in ("ada", "bo", "cy", "dan"):
        assert (course.root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file()
    grades = (course.root / "grading" / "export" / f"{ASSIGNMENT}_scores.csv").read_text()
    assert all(student in grades for student in ("ada", "bo", "cy", "dan"))
