"""Memorised labels gain nothing: on the synthetic default and on a VOC-format tree (CamVid, real photos: the same
two attacks in a whole term, ``tests/test_camvid_term.py``).

Each attack is an honest submission (the source notebook's code and answers) whose SegmentationModel answers the
validation split by lookup, judged in the sandbox on the term's data:

- ``memory``: the validation masks travel in the checkpoint as buffers (buffers are not parameters, so the
  structure and the parameter count still pass), keyed by each normalised image's mean;
- ``disk``: ``forward()`` rebuilds the validation split at grading time with ``course_lib`` from the data's own
  location (for the synthetic default: the split is generated, as round 1's attack did).

Both score mIoU 1.0 on the public split where they can read it; the tiers are decided on the held-out data alone
(held-out scenes, or copies transformed by the term's secret), where they score like the untrained model they are,
and the TA is told (``Verdict.flags``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from adversarial import lookup_checkpoint, lookup_model_code
from autograder.checks.segmentation_hw import TIERS
from classes import ASSIGNMENT
from autograder.heldout import HELDOUT_GAP, grading_data
from autograder.judge import judge_submission
from autograder.sandbox import jail_supported
from autograder.term import GradedSetting
from course_lib.data import VOC_PALETTE, DataSource, make_synthetic, normalize_images

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]



def build_voc_tree(root: Path, count: int = 40, side: int = 96) -> Path:
    """A VOC-format tree whose val split holds ``count`` synthetic scenes (JPEG images, palette PNG labels)."""
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    scenes = make_synthetic(count + 4, size=side, seed=3)
    palette = [c for rgb in VOC_PALETTE for c in rgb]
    ids = [f"2011_{i:06d}" for i in range(count + 4)]
    for image_id, image, mask in zip(ids, scenes.images, scenes.masks):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=95)
        label = Image.fromarray(mask.numpy(), mode="P")
        label.putpalette(palette)
        label.save(voc / "SegmentationClass" / f"{image_id}.png")
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("\n".join(ids[:4]) + "\n")
    (lists / "val.txt").write_text("\n".join(ids[4:]) + "\n")
    return root


@pytest.fixture(scope="module")
def terms(tmp_path_factory) -> dict[str, GradedSetting]:
    voc = build_voc_tree(tmp_path_factory.mktemp("voc"))
    return {"synthetic": GradedSetting(), "voc": GradedSetting(DataSource("voc", voc), (64, 64), "FULL")}


def lookup_submission(folder: Path, setting: GradedSetting, attack: str) -> Path:
    """The source notebook (honest code and answers) with the lookup model, and an untrained checkpoint."""
    folder.mkdir(parents=True)
    nb = json.loads((REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "segmentation_model")
    cell["source"] = "".join(cell["source"]) + lookup_model_code(str(setting.data) if attack == "disk" else None)
    (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
    public = setting.data.load("val", setting.image_size)
    lookup_checkpoint(folder / f"{ASSIGNMENT}_checkpoint.pt", public, remember=attack == "memory")
    return folder


@pytest.mark.parametrize("attack", ["memory", "disk"])
@pytest.mark.parametrize("data_name", ["synthetic", "voc"])
def test_a_model_that_answers_by_lookup_gains_no_tier(terms, data_name, attack, tmp_path):
    setting = terms[data_name]
    data = grading_data(tmp_path, setting)
    verdict = judge_submission(lookup_submission(tmp_path / "submission", setting, attack), ASSIGNMENT, data)
    miou = verdict.miou
    assert miou is not None, verdict.problems
    reads_hidden_files = attack == "disk" and data_name != "synthetic"
    if reads_hidden_files and jail_supported():
        assert miou["public"] < 0.5, "the sandbox should not see the data's files"
    else:
        assert miou["public"] > 0.99, "the lookup should answer the public split perfectly"
        assert miou["public"] - miou["heldout"] > HELDOUT_GAP
        assert any("by lookup" in flag for flag in verdict.flags), verdict.flags  # the TA is told
    assert miou["effective"] == miou["heldout"] < min(TIERS.values())  # the held-out figure alone decides
    for gid in TIERS:
        assert not verdict.checks[gid].passed
        assert data.heldout_kind in verdict.checks[gid].message
    if attack == "memory":
        assert any("besides its parameters" in flag for flag in verdict.flags), verdict.flags
    # the attack's cover holds (buffers are not parameters): the code checks pass, the tiers see through it
    assert verdict.checks["test_residual_block"].passed and verdict.checks["test_segmentation_model"].passed


def test_the_lookup_submission_is_what_it_claims(terms, tmp_path):
    """The attack is real: outside the grader, its model answers the public split perfectly from its buffers."""
    setting = terms["voc"]
    folder = lookup_submission(tmp_path / "submission", setting, "memory")
    nb = json.loads((folder / f"{ASSIGNMENT}.ipynb").read_text())
    namespace = {}
    exec("import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n", namespace)
    for gid in ("residual_block", "segmentation_model"):
        cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == gid)
        exec("".join(cell["source"]), namespace)
    payload = torch.load(folder / f"{ASSIGNMENT}_checkpoint.pt", weights_only=True)
    model = namespace["SegmentationModel"](**payload["model_kwargs"])
    model.load_state_dict(payload["state_dict"])
    public = setting.data.load("val", setting.image_size)
    with torch.no_grad():
        preds = model.eval()(normalize_images(public.images)).argmax(1)
    assert torch.equal(preds.to(torch.uint8), public.masks.clamp(max=public.num_classes - 1))


# --- round 4: nothing student code says while it holds the held-out images reaches the student ----------------------

LEAK = '''

import json as _json, os as _os, sys as _sys
import torch as _torch

_HonestModel = SegmentationModel


class SegmentationModel(_HonestModel):
    """The honest network, which fingerprints the last image (a held-out one) of the grader's images when it can read
    them and sends the fingerprint out {how}."""

    def forward(self, x):
        files = _json.loads(_sys.argv[1])["files"] if len(_sys.argv) > 1 else {{}}
        if "images.pt" in files:
            last = _torch.load(files["images.pt"], weights_only=True)[-1]
            fingerprint = "HELDOUT-" + bytes(last.flatten()[:60].tolist()).hex()
            if {how!r} == "in an exception":
                raise RuntimeError(fingerprint)
            _os.write(2, fingerprint.encode())
            _os._exit(3)
        return super().forward(x)
'''


def leaking_submission(folder: Path, setting: GradedSetting, how: str) -> Path:
    """The source notebook (honest code and answers) with the leaking model, and an untrained checkpoint."""
    folder.mkdir(parents=True)
    nb = json.loads((REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "segmentation_model")
    cell["source"] = "".join(cell["source"]) + LEAK.format(how=how)
    (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
    from autograder.reference.segmentation_hw import SegmentationModel
    from course_lib.train.recipes import QUICK

    kwargs = dict(QUICK.model_kwargs, num_classes=setting.num_classes)
    torch.save({"state_dict": SegmentationModel(**kwargs).state_dict(), "model_kwargs": kwargs},
               folder / f"{ASSIGNMENT}_checkpoint.pt")
    return folder


@pytest.mark.parametrize("how", ["in an exception", "on stderr before exiting"])
def test_what_the_model_says_while_it_holds_the_held_out_images_never_reaches_the_student(terms, how, tmp_path):
    """Round 4 fingerprinted the first held-out scenes into the text of an exception raised during the random-weights
    probe; the text became a flag in the student's own feedback and the fingerprint found the held-out seed. The
    predictions now run apart from the code probes: what comes back from them is tensors and the name of a Python
    exception type, and the messages stay in the grader's record for the TA; the code is still graded fully."""
    setting = terms["synthetic"]
    data = grading_data(tmp_path, setting)
    fingerprint = "HELDOUT-" + bytes(data.heldout.images[-1].flatten()[:60].tolist()).hex()
    verdict = judge_submission(leaking_submission(tmp_path / "submission", setting, how), ASSIGNMENT, data)
    seen = json.dumps([verdict.problems, verdict.flags, [c.message for c in verdict.checks.values()]])
    assert fingerprint[:24] not in seen and "HELDOUT-" not in seen
    assert verdict.miou is None and not any(verdict.checks[gid].passed for gid in TIERS)
    assert verdict.checks["test_residual_block"].passed and verdict.checks["test_segmentation_model"].passed
    if how == "in an exception":
        assert "RuntimeError was raised while predicting on the grader's images" in seen
        assert verdict.sandbox["heldout_run"]["said"]["error"] == f"RuntimeError: {fingerprint}"[:300]  # the TA's
    else:
        assert "ended the grading process while predicting on the grader's images (exit code 3)" in seen
        assert fingerprint in verdict.sandbox["heldout_run"]["stderr_tail"]  # the TA's record


def test_an_exception_type_named_by_the_student_is_not_shown():
    from autograder.judge import _heldout_claims

    claims = _heldout_claims({"error": "A0b1c2d3e4f5: anything", "random_weights_error": "ValueError: 00ff"})
    assert claims["error"].startswith("an exception was raised") and "A0b1" not in claims["error"]
    assert claims["random_weights_error"] == "ValueError was raised while predicting with random weights"
