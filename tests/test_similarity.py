"""``python -m autograder similarity``: planted copies are found with their evidence, honest pairs are not reported,
and the thresholds sit above every honest pair the calibration measured.

No training: a small class of honest students (implementations written differently, ``bench/honest_students.py``)
with freshly initialised checkpoints, and planted copies made from them: the notebook renamed and reformatted, the
checkpoint copied, copied and fine-tuned for a few steps, re-saved under another name, and stored as float16; a
trained checkpoint laundered (channel signs flipped, channels permuted, values nudged: the same function) and a
checkpoint first saved under classmates' names (framing them). The calibration itself
(trained models, every score's honest distribution) is ``bench/similarity_calibration.py``; its committed results are
read here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from autograder.checks import get_assignment
from autograder.course import Course
from autograder.similarity import SCORES, THRESHOLDS, analyse, load_thresholds, similarity
from autograder.similarity import code as cd
from autograder.similarity.checkpoints import archive_records
from autograder.similarity.plant import disguise_code, plant_copy

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from honest_students import honest_class, namespace, student_notebook  # noqa: E402

ASSIGNMENT = get_assignment("segmentation_hw")
RELEASE = REPO / "release" / "segmentation_hw" / "segmentation_hw.ipynb"
SMALL = {"num_classes": 21, "width": 8, "num_blocks": 1, "downsample": True}


def hand_in(root: Path, name: str, student, seed: int, minutes: float) -> Path:
    """A student's folder: their notebook and a freshly initialised checkpoint saved as the notebook saves it."""
    from course_lib.submission import save_submission

    folder = root / "submitted" / name / "segmentation_hw"
    folder.mkdir(parents=True)
    nbformat.write(student_notebook(RELEASE, student), folder / ASSIGNMENT.notebook)
    torch.manual_seed(seed)
    model = namespace(student)["SegmentationModel"](**SMALL)
    metrics = {"miou": 0.1, "pixel_accuracy": 0.5, "num_parameters": sum(p.numel() for p in model.parameters()),
               "training_minutes": minutes}
    save_submission(model, SMALL, metrics, folder, "segmentation_hw", input_size=32)
    return folder


def fine_tune(folder: Path, student, steps: int = 20, minutes: float = 0.37) -> None:
    """The copier's run: the copied checkpoint trained for a few AdamW steps on other images, saved anew."""
    from course_lib.data import load_synthetic, normalize_images
    from course_lib.submission import save_submission
    from course_lib.train.checkpoint import load_checkpoint

    payload = load_checkpoint(folder / ASSIGNMENT.checkpoint)
    model = namespace(student)["SegmentationModel"](**payload["model_kwargs"])
    model.load_state_dict(payload["state_dict"])
    data = load_synthetic("train", size=32, num_images=16, seed=9)
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-3)
    torch.manual_seed(7)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(normalize_images(data.images)), data.masks.long(),
                                                 ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    save_submission(model, payload["model_kwargs"], {**payload["metrics"], "training_minutes": minutes}, folder,
                    "segmentation_hw", input_size=32)


@pytest.fixture(scope="module")
def planted_class(tmp_path_factory):
    """Six honest students and five planted copies of them."""
    root = tmp_path_factory.mktemp("similarity")
    (root / "release" / "segmentation_hw").mkdir(parents=True)
    shutil.copy(RELEASE, root / "release" / "segmentation_hw")
    shutil.copy(REPO / "nbgrader_config.py", root)
    students = honest_class(10)
    for i, student in enumerate(students[:6]):
        hand_in(root, f"st{i}", student, seed=100 + i, minutes=1.7 + i / 97)
    plant_copy(root, ASSIGNMENT, "st0", "renamer", checkpoint="none")           # code only, renamed + reformatted
    hand_in(root, "copier", students[6], seed=7, minutes=1.9)                   # own code...
    shutil.copyfile(root / "submitted/st1/segmentation_hw" / ASSIGNMENT.checkpoint,  # ...st1's checkpoint file
                    root / "submitted/copier/segmentation_hw" / ASSIGNMENT.checkpoint)
    tuner = hand_in(root, "tuner", students[7], seed=8, minutes=2.1)            # own code, st2's weights fine-tuned
    shutil.copyfile(root / "submitted/st2/segmentation_hw" / ASSIGNMENT.checkpoint, tuner / ASSIGNMENT.checkpoint)
    fine_tune(tuner, students[2])
    resaver = hand_in(root, "resaver", students[8], seed=9, minutes=2.2)        # st3's weights saved as st3_best.pt
    payload = torch.load(root / "submitted/st3/segmentation_hw" / ASSIGNMENT.checkpoint, weights_only=True)
    torch.save(payload, resaver / "st3_best.pt")
    (resaver / "st3_best.pt").replace(resaver / ASSIGNMENT.checkpoint)
    (resaver / "segmentation_hw_results.json").unlink()
    halver = hand_in(root, "halver", students[9], seed=10, minutes=2.3)         # st5's weights stored as float16
    payload = torch.load(root / "submitted/st5/segmentation_hw" / ASSIGNMENT.checkpoint, weights_only=True)
    payload["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    payload["metrics"]["training_minutes"] = 2.3
    torch.save(payload, halver / ASSIGNMENT.checkpoint)
    return Course(root), analyse(Course(root), "segmentation_hw")


def reported(analysis) -> dict:
    return {frozenset((p.a, p.b)): p for p in analysis.reported()}


def test_planted_copies_are_reported_with_their_evidence(planted_class):
    _, analysis = planted_class
    pairs = reported(analysis)
    renamed = pairs[frozenset(("st0", "renamer"))]
    assert renamed.scores["code"] >= load_thresholds()["scores"]["code"]["threshold"], renamed.reasons
    assert any("shared code" in r for r in renamed.reasons)
    assert "<mark>" in renamed.code_match.html_a and "<mark>" in renamed.code_match.html_b
    copied = pairs[frozenset(("st1", "copier"))]
    assert "the same checkpoint file, byte for byte" in copied.facts
    assert any("serialization id" in f for f in copied.facts)
    assert copied.scores["identical"] == 1.0 and copied.scores["layers"] > 0.99
    tuned = pairs[frozenset(("st2", "tuner"))]
    assert tuned.scores["identical"] < 0.5, "fine-tuning changes every weight"
    assert any("weight correlation" in r for r in tuned.reasons), tuned.reasons
    resaved = pairs[frozenset(("st3", "resaver"))]
    assert resaved.scores["identical"] == 1.0
    assert any("first saved as 'st3_best'" in r and "contains st3" in r for r in resaved.remarks), resaved.remarks
    assert not any("first saved as" in f for f in resaved.facts), "a name is its submitter's claim, not a fact"
    assert any("serialization id" in f for f in resaved.facts), "the same payload saved again: the same digest"
    assert not any("byte for byte" in f for f in resaved.facts)
    halved = pairs[frozenset(("st5", "halver"))]
    assert halved.scores["identical"] == 1.0 and not halved.facts
    assert all(r["identical_after_cast"] and not r["bit_identical"] for r in halved.layers)


def test_no_honest_pair_is_reported(planted_class):
    _, analysis = planted_class
    planted = {"renamer", "copier", "tuner", "resaver", "halver"}
    honest = [p for p in analysis.reported() if not {p.a, p.b} & planted]
    assert honest == [], [(p.a, p.b, p.reasons) for p in honest]
    assert set(map(frozenset, ((p.a, p.b) for p in analysis.reported()))) == {
        frozenset(x) for x in (("st0", "renamer"), ("st1", "copier"), ("st2", "tuner"), ("st3", "resaver"),
                               ("st5", "halver"))}


def test_the_command_writes_the_report_and_the_csv_with_student_text_escaped(planted_class, capsys):
    from autograder.cli import main

    course, _ = planted_class
    folder = course.root / "submitted/st4/segmentation_hw"
    nb = nbformat.read(folder / ASSIGNMENT.notebook, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "residual_block")
    cell.source += "\n# </pre><script>alert('x')</script>\n"
    nbformat.write(nb, folder / ASSIGNMENT.notebook)
    plant_copy(course.root, ASSIGNMENT, "st4", "st4_twin", checkpoint="copy")
    try:
        assert main(["--course", str(course.root), "similarity", "segmentation_hw"]) == 0
    finally:
        shutil.rmtree(course.root / "submitted/st4_twin")
    out = capsys.readouterr().out
    assert "st4 / st4_twin" in out
    page = (course.root / "grading/similarity/segmentation_hw/report.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert page.count("<img") >= 2 and "percentile" in page
    rows = (course.root / "grading/similarity/segmentation_hw/pairs.csv").read_text().splitlines()
    assert rows[0].startswith("student_a,student_b,reported,code,identical,layers")
    assert len(rows) == 1 + 12 * 11 // 2 and rows[1].split(",")[2] == "yes"


def test_fingerprints_survive_renaming_and_reformatting_and_ignore_the_handout():
    block = honest_class(1)[0].residual_block
    boilerplate = cd.boilerplate_hashes([block[: len(block) // 2]])
    a = cd.fingerprint({"residual_block": block}, boilerplate)
    respaced = "# written by me\n" + block.replace("out", "hidden_state").replace("    ", "\t").replace(", ", " ,  ")
    assert cd.fingerprint({"residual_block": respaced}, boilerplate).hashes == a.hashes != set()
    none = np.zeros(0, dtype=np.int64)  # ast.unparse also drops trailing commas and parentheses: most survives
    shared, sizes = cd.shared_fingerprints([cd.fingerprint({"b": block}, none),
                                            cd.fingerprint({"b": disguise_code(block)}, none)])
    assert cd.containment(shared, sizes)[0, 1] > 0.85
    assert not a.hashes & set(boilerplate.tolist())
    handout_only = cd.fingerprint({"residual_block": block[: len(block) // 2]}, boilerplate)
    assert not handout_only.hashes


@pytest.mark.slow  # a subprocess or a whole release: the full suite's, not the fast tier's
def test_fingerprints_are_the_same_in_every_process():
    """Python's hash() is salted per process; the fingerprints must not be."""
    code = "import sys\nsys.path.insert(0, 'bench')\nfrom honest_students import honest_class\n" \
           "from autograder.similarity import code as cd\nimport numpy as np\n" \
           "fp = cd.fingerprint(honest_class(2)[1].cells, np.zeros(0, dtype=np.int64))\n" \
           "print(sorted(fp.hashes)[:5], len(fp.hashes))"
    outs = {subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1, outs


def test_torch_names_the_archive_after_the_file_it_was_first_saved_as(tmp_path):
    """The finding the inner-name evidence rests on, pinned on the installed torch."""
    torch.save({"w": torch.ones(2)}, tmp_path / "alice_model.pt")
    (tmp_path / "alice_model.pt").rename(tmp_path / "segmentation_hw_checkpoint.pt")
    inner, sid = archive_records(tmp_path / "segmentation_hw_checkpoint.pt")
    assert inner == "alice_model" and sid
    names = zipfile.ZipFile(tmp_path / "segmentation_hw_checkpoint.pt").namelist()
    assert all(n.startswith("alice_model/") for n in names)
    torch.save({"w": torch.ones(2)}, tmp_path / "again.pt")  # the same content: the same digest, another name
    assert archive_records(tmp_path / "again.pt") == ("again", sid)
    torch.save({"w": torch.ones(2), "minutes": 1.25}, tmp_path / "other.pt")
    assert archive_records(tmp_path / "other.pt")[1] != sid, "the id is a digest of the saved content"


def test_thresholds_sit_above_every_honest_pair_of_the_calibration_class():
    """The committed calibration (bench/similarity_calibration.py): every threshold is the highest honest pair plus
    the stated margin, no honest pair is reported, and every planted copy is."""
    table = load_thresholds()
    calibration = json.loads((REPO / "bench/results/similarity_calibration_cpu.json").read_text())
    seeds = calibration["regimes"]["seeds"]
    assert seeds["students"] >= 20 and table["scores"]["code"]["students"] == seeds["students"]
    for score in SCORES:
        entry = table["scores"][score]
        assert entry["honest"] == seeds["distributions"][score] and len(entry["honest"]) >= 1
        assert entry["threshold"] >= max(entry["honest"]) + table["margin"] - 1e-9 or entry["threshold"] >= 0.999
    assert seeds["reported_honest_pairs"] == [] and seeds["honest_pairs_with_facts"] == []
    for copier, planted in seeds["planted"].items():
        assert planted["reported"], (copier, planted)
    assert "bench/similarity_calibration.py" in table["source"] and THRESHOLDS.is_file()


# --- laundered weights and framing names -------------------------------------------------------------------------------

def launder(state: dict, seed: int = 0, noise: float = 0.0, nudge: float = 0.01) -> dict:
    """A copier's disguise of a state dict that leaves its function as it is: every convolution feeding a BatchNorm
    has output channels negated (the BatchNorm's weight and running mean with them; signs balanced so that the
    flattened tensor no longer correlates with the original), every block's hidden channels permuted (conv1's output
    channels, bn1's channels, conv2's input channels), then one value of every tensor of 64+ values moved by
    ``nudge`` and, with ``noise``, every value by that much relative noise."""
    g = torch.Generator().manual_seed(seed)
    state = {k: v.detach().clone() for k, v in state.items()}
    weights = [k[: -len(".weight")] for k in state if k.endswith(".weight")]
    pairs = [(conv, bn) for conv, bn in zip(weights, weights[1:]) if state[f"{conv}.weight"].ndim == 4
             and f"{conv}.bias" not in state and f"{bn}.running_mean" in state
             and state[f"{bn}.weight"].numel() == state[f"{conv}.weight"].shape[0]]
    assert len(pairs) >= 10, pairs
    for conv, bn in pairs:
        w = state[f"{conv}.weight"].double()
        energy = ((w - w.mean()) ** 2).flatten(1).sum(1)  # (out,)
        sign, running = torch.ones(len(energy)), 0.0
        for r in energy.argsort(descending=True).tolist():  # balanced: sum of sign * energy near 0
            sign[r] = -1.0 if running > 0 else 1.0
            running += float(sign[r] * energy[r])
        state[f"{conv}.weight"] *= sign.view(-1, 1, 1, 1)
        state[f"{bn}.weight"] *= sign
        state[f"{bn}.running_mean"] *= sign
    permuted = 0
    for conv, bn in pairs:
        after = conv[:-1] + "2"
        if conv.endswith("conv1") and f"{after}.weight" in state:
            perm = torch.randperm(state[f"{conv}.weight"].shape[0], generator=g)
            state[f"{conv}.weight"] = state[f"{conv}.weight"][perm]
            for name in ("weight", "bias", "running_mean", "running_var"):
                state[f"{bn}.{name}"] = state[f"{bn}.{name}"][perm]
            state[f"{after}.weight"] = state[f"{after}.weight"][:, perm]
            permuted += 1
    assert permuted >= 3, permuted
    for key, value in state.items():
        if value.is_floating_point():
            value = value.contiguous().clone()
            if noise:
                value = value * (1 + noise * torch.randn(value.shape, generator=g))
            if value.numel() >= 64:
                flat = value.view(-1)
                flat[int(flat.abs().argmax())] *= 1 + nudge
            state[key] = value
    return state


def trained(folder: Path, student, seed: int, minutes: float) -> Path:
    """A student's folder with a checkpoint trained for a few steps (BatchNorm statistics and weights of their
    own), not the training the notebook does; returns the checkpoint."""
    hand_in(folder.parents[2], folder.parent.name, student, seed=seed, minutes=minutes)
    fine_tune(folder, student, minutes=minutes)
    return folder / ASSIGNMENT.checkpoint


def test_launder_keeps_the_function(tmp_path):
    """The helper's disguise is what the attack is: the same logits (up to the nudges), other tensors."""
    from course_lib.train.checkpoint import load_checkpoint

    student = honest_class(1)[0]
    path = trained(tmp_path / "submitted/st/segmentation_hw", student, seed=3, minutes=1.1)
    payload = load_checkpoint(path)
    model, disguised = (namespace(student)["SegmentationModel"](**payload["model_kwargs"]) for _ in range(2))
    model.load_state_dict(payload["state_dict"])
    disguised.load_state_dict(launder(payload["state_dict"], nudge=0.0))
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), disguised.eval()(x), atol=1e-4)
    stored = [k for k, v in payload["state_dict"].items()  # every convolution but the classifier (it has a bias)
              if v.ndim == 4 and v.numel() >= 64 and k.replace(".weight", ".bias") not in payload["state_dict"]]
    assert len(stored) >= 10 and not any(torch.equal(payload["state_dict"][k], disguised.state_dict()[k]) for k in stored)


@pytest.fixture(scope="module")
def laundered_class(tmp_path_factory):
    """Four students with trained checkpoints of their own; then ``launderer`` hands in st_a's checkpoint laundered
    (own code, the results file's and checkpoint's times moved), and ``framer`` hands in his own checkpoint first
    saved as ``st_a_st_b_launderer_checkpoint.pt``."""
    from course_lib.train.checkpoint import load_checkpoint

    root = tmp_path_factory.mktemp("laundered")
    (root / "release" / "segmentation_hw").mkdir(parents=True)
    shutil.copy(RELEASE, root / "release" / "segmentation_hw")
    shutil.copy(REPO / "nbgrader_config.py", root)
    students = honest_class(4)
    for i, name in enumerate(("st_a", "st_b", "launderer", "framer")):
        trained(root / "submitted" / name / "segmentation_hw", students[i], seed=200 + i, minutes=1.3 + i / 89)
    original = load_checkpoint(root / "submitted/st_a/segmentation_hw" / ASSIGNMENT.checkpoint)
    own = root / "submitted/launderer/segmentation_hw"
    own_keys = list(torch.load(own / ASSIGNMENT.checkpoint, weights_only=True)["state_dict"])
    state = dict(zip(own_keys, launder(original["state_dict"], seed=5).values()))  # under the copier's own names
    torch.save({**original, "state_dict": state, "metrics": {**original["metrics"], "training_minutes": 1.41}},
               own / ASSIGNMENT.checkpoint)
    framer = root / "submitted/framer/segmentation_hw"
    payload = torch.load(framer / ASSIGNMENT.checkpoint, weights_only=True)
    torch.save(payload, framer / "st_a_st_b_launderer_checkpoint.pt")
    (framer / "st_a_st_b_launderer_checkpoint.pt").replace(framer / ASSIGNMENT.checkpoint)
    return Course(root), analyse(Course(root), "segmentation_hw")


def test_a_laundered_checkpoint_is_reported(laundered_class):
    """Sign flips, permutations and 1 % nudges, re-saved: no byte, digest or training time is shared, and the
    magnitudes and the canonical weight correlation still are."""
    _, analysis = laundered_class
    table = load_thresholds()["scores"]
    pairs = reported(analysis)
    pair = pairs[frozenset(("st_a", "launderer"))]
    assert not pair.facts, pair.facts
    assert pair.scores["identical"] > 0.95 and pair.scores["identical"] >= table["identical"]["threshold"]
    assert pair.scores["layers"] > 0.99 and pair.scores["layers"] >= table["layers"]["threshold"]
    weights = [r for r in pair.layers if r["weight"]]
    assert np.median([r["correlation"] for r in weights]) < 0.1, "as stored, the laundered tensors look unrelated"
    assert min(r["canonical_correlation"] for r in weights) > 0.99
    assert set(pairs) == {frozenset(("st_a", "launderer"))}, [(p.a, p.b, p.reasons) for p in analysis.reported()]


def test_a_name_that_contains_classmates_logins_reports_no_pair(laundered_class):
    """framer's own checkpoint, first saved under three classmates' names: a note on framer's file, no pair."""
    _, analysis = laundered_class
    assert not [p for p in analysis.reported() if "framer" in (p.a, p.b)]
    assert not [p for p in analysis.pairs if "framer" in (p.a, p.b)], "not even shown"
    (framer,) = [s for s in analysis.students if s.name == "framer"]
    (note,) = [n for n in framer.notes if "first saved as" in n]
    assert "st_a_st_b_launderer_checkpoint" in note and "launderer, st_a, st_b" in note and "no evidence" in note
    (pair,) = [p for p in analysis.reported() if "launderer" in (p.a, p.b)]
    assert not any("framer" in r for r in pair.remarks + pair.reasons)


def test_noise_below_a_rounding_error_defeats_identical_values_not_the_canonical_correlation(laundered_class):
    """The limit stated in the README: relative noise of 1e-6 on every value (the function moves by less than a
    rounding error of training) leaves almost no magnitude bit for bit, and the canonical correlation at 1."""
    from autograder.similarity import checkpoints as ck
    from course_lib.train.checkpoint import load_checkpoint

    course, _ = laundered_class
    path = course.root / "submitted/st_a/segmentation_hw" / ASSIGNMENT.checkpoint
    payload = load_checkpoint(path)
    noisy = course.root.parent / "noisy.pt"
    torch.save({**payload, "state_dict": launder(payload["state_dict"], seed=6, noise=1e-6)}, noisy)
    honest = course.root / "submitted/st_b/segmentation_hw" / ASSIGNMENT.checkpoint
    prints = [ck.fingerprint_checkpoint(p) for p in (path, noisy, honest)]
    identical, layers = ck.identical_share(prints), ck.layer_correlation(prints)
    assert identical[0, 1] < 0.1 and layers[0, 1] > 0.99
    assert identical[0, 2] < 0.01 and abs(layers[0, 2]) < load_thresholds()["scores"]["layers"]["threshold"]
