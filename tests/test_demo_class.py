"""``make demo``'s homework class (``bench/demo.py``: ``demo_class``): the similarity report names its planted copy
(gus hands in ada's files, the notebook disguised) and no honest pair: the honest students write their own code and
only ada hands in the reference's checkpoint.

No grading and no training of ben's and eli's models: their checkpoints here are their own models initialised with
their seeds and moved a little, saved as the notebook saves them (the similarity report compares files and tensors,
not how well they segment).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from conftest import copy_course

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def untrained(folder: Path, seed: int, downsample: bool, student) -> Path:
    """The student's model initialised with their seed, every tensor moved a little (as by training), saved as the
    notebook saves it."""
    import torch

    from course_lib.data import load_synthetic
    from course_lib.models import count_parameters
    from course_lib.submission import save_submission
    from course_lib.train import seed_everything
    from course_lib.train.recipes import QUICK
    from honest_students import namespace

    val = load_synthetic("val")
    kwargs = dict(QUICK.model_kwargs, num_classes=val.num_classes, downsample=downsample)
    seed_everything(seed)
    model = namespace(student)["SegmentationModel"](**kwargs)
    with torch.no_grad():  # training moves every tensor; untrained BatchNorm layers hold the same ones and zeros
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * 0.01)
    metrics = dict(miou=0.5, pixel_accuracy=0.9, num_parameters=count_parameters(model),
                   training_minutes=seed / 997)  # a time of their own: the same time is evidence of one run
    save_submission(model, kwargs, metrics, folder, "segmentation_hw", data=val, mode="QUICK")
    return folder


def test_the_demo_class_has_one_planted_copy_and_no_honest_pair_is_reported(released_course, tmp_path):
    sys.path.insert(0, str(REPO / "bench"))
    import demo
    from autograder.collect import collect
    from autograder.roster import import_roster, read_roster
    from autograder.similarity import analyse

    course = copy_course(released_course, tmp_path / "course")
    own = {student: untrained(tmp_path / student, seed, downsample, demo.honest_students()[student])
           for student, (seed, downsample) in demo.OWN_TRAINING.items()}
    zip_path = tmp_path / "hw.zip"
    expected = demo.demo_class(course, course.root / "source" / demo.ASSIGNMENT, own, zip_path)
    assert expected["gus"] == expected["ada"] == set()
    names = zipfile.ZipFile(zip_path).namelist()
    assert not any(n.startswith(("ramandev_", "kowalczykfay_")) and n.endswith(".pt") for n in names)
    import_roster(course.db_url, read_roster(demo.demo_roster(tmp_path / "roster.csv")), log=lambda *_: None)
    collect(course, demo.ASSIGNMENT, zip_path, log=lambda *_: None)
    assert course.submitted(demo.ASSIGNMENT) == ["ada", "ben", "cara", "dev", "eli", "fay", "gus"]
    analysis = analyse(course, demo.ASSIGNMENT)
    assert [(p.a, p.b) for p in analysis.reported()] == [("ada", "gus")]
    (pair,) = analysis.reported()
    assert any("byte for byte" in reason for reason in pair.facts)
    assert pair.scores["code"] >= analysis.thresholds["scores"]["code"]["threshold"]
