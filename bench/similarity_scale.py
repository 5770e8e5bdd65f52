"""How long ``python -m autograder similarity`` takes for a class of 1,000 on this machine.

A synthetic class in a temporary course folder: each student hands in the release notebook with a ResidualBlock
and a SegmentationModel drawn from the honest idioms of ``bench/honest_students.py`` (cells may repeat between
students: a large class shares idioms) and a small helper of their own, and a checkpoint of the QUICK model (225,797 parameters) initialised with
their own seed and saved as the notebook saves it; ten of them are planted copies (a disguised notebook, a copied
checkpoint). No training: the cost of the tool does not depend on how well a model learnt.

Measured: reading and fingerprinting every submission (code and checkpoint), the pairwise scores (one sparse
product for the code, index look-ups for identical tensors and file facts, one matrix product per weight tensor),
the report, and peak memory. Pairwise work is never a loop over the N(N-1)/2 pairs.

Usage: python bench/similarity_scale.py [--students 1000]   (run it with nice -n 19 on a shared machine)
Writes bench/results/similarity_scale_{cpu,gpu}.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, print_table, write_json  # noqa: E402
import honest_students as hs  # noqa: E402

ASSIGNMENT = "segmentation_hw"


CHECKS = ("    assert x.shape[{a}] % {b} == 0, 'side not divisible by {b}'\n",
          "    assert x.dim() == {a} + {b} - {b}, 'expected {a}-D input'\n",
          "    y = x[:, :{b}].mean() * {a}\n",
          "    if x.shape[0] > {a}{b}:\n        print('large batch', {b})\n",
          "    z = torch.zeros({a}, {b}).sum() + x.numel() // {a}\n")


def random_student(rng: random.Random, name: str) -> hs.Student:
    """Idioms drawn with repetition (the idiom space holds 108 models: a class of 1,000 repeats them), plus a small
    helper of the student's own (random checks and constants), as real notebooks carry their own additions."""
    block = hs.residual_block(rng.choice(sorted(hs.CONV)), rng.choice(sorted(hs.SHORTCUT)), rng.choice(sorted(hs.ACT)),
                              rng.choice(sorted(hs.FORWARD)))
    model = hs.segmentation_model(rng.choice(sorted(hs.STEM)), rng.choice(sorted(hs.STAGES)),
                                  rng.choice(sorted(hs.UPSAMPLE)), rng.choice(sorted(hs.DECODER)), rng.random() < 0.5)
    helper = "def check_input(x):\n" + "".join(rng.choice(CHECKS).format(a=rng.randint(2, 99), b=rng.randint(2, 99))
                                             for _ in range(6)) + "    return x\n\n\n"
    return hs.Student(name, block, helper + model, "random")


def build_class(root: Path, size: int, copies: int = 10) -> dict:
    """The course folder; returns {copier: original}."""
    import nbformat
    import torch

    from autograder.checks import get_assignment
    from autograder.reference.segmentation_hw import SegmentationModel
    from autograder.similarity.plant import disguise_notebook
    from course_lib.train.checkpoint import save_checkpoint
    from course_lib.train.recipes import QUICK

    assignment = get_assignment(ASSIGNMENT)
    release = ROOT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    (root / "release" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(release, root / "release" / ASSIGNMENT)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    rng = random.Random(7)
    kwargs = dict(QUICK.model_kwargs)
    planted = {f"copier{c:02d}": f"student{c * (size - copies) // copies:04d}" for c in range(copies)}
    for i in range(size - copies):
        name = f"student{i:04d}"
        folder = root / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(hs.student_notebook(release, random_student(rng, name)), folder / f"{ASSIGNMENT}.ipynb")
        torch.manual_seed(i)
        model = SegmentationModel(**kwargs)
        metrics = {"miou": 0.5, "pixel_accuracy": 0.9, "num_parameters": 225_797, "training_minutes": 1.8 + rng.random()}
        save_checkpoint(folder / f"{ASSIGNMENT}_checkpoint.pt", model, kwargs, metrics=metrics)  # as save_submission
        (folder / f"{ASSIGNMENT}_results.json").write_text(json.dumps({"metrics": metrics, "history": None}))
    for copier, original in planted.items():
        source = root / "submitted" / original / ASSIGNMENT
        folder = root / "submitted" / copier / ASSIGNMENT
        folder.mkdir(parents=True)
        nb = nbformat.read(source / f"{ASSIGNMENT}.ipynb", as_version=4)
        nbformat.write(disguise_notebook(nb, set(assignment.code_cells)), folder / f"{ASSIGNMENT}.ipynb")
        for name in (f"{ASSIGNMENT}_checkpoint.pt", f"{ASSIGNMENT}_results.json"):
            shutil.copy(source / name, folder / name)
    return planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1000)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from autograder.course import Course
    from autograder.similarity import analyse, load_thresholds
    from autograder.similarity import checkpoints as ck
    from autograder.similarity import code as cd
    from autograder.similarity.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        planted = build_class(root, args.students)
        made = time.perf_counter() - start
        print(f"class of {args.students} made in {made:.0f} s", flush=True)
        course = Course(root)
        start, cpu = time.perf_counter(), time.process_time()
        analysis = analyse(course, ASSIGNMENT)
        analysed, analysed_cpu = time.perf_counter() - start, time.process_time() - cpu
        # the pairwise part alone, on the summaries analyse made
        prints = [s.checkpoint for s in analysis.students]
        codes = [s.code for s in analysis.students]
        start = time.perf_counter()
        shared, sizes = cd.shared_fingerprints(codes)
        cd.containment(shared, sizes)
        code_pairs = time.perf_counter() - start
        start = time.perf_counter()
        ck.identical_share(prints)
        ck.layer_correlation(prints)
        checkpoint_pairs = time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        write_report(analysis, root / "report")
        reported, reported_cpu = time.perf_counter() - start, time.process_time() - cpu
        found = {frozenset((p.a, p.b)) for p in analysis.reported()}
        caught = sum(frozenset(x) in found for x in planted.items())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.students
    row = {"students": n, "pairs": n * (n - 1) // 2, "read + fingerprint + score (s)": round(analysed, 1),
           "of which code pairs (s)": round(code_pairs, 2), "of which checkpoint pairs (s)": round(checkpoint_pairs, 2),
           "report (s)": round(reported, 1), "total (s)": round(analysed + reported, 1),
           "total CPU (s)": round(analysed_cpu + reported_cpu, 1),
           "reported pairs": len(found), "planted copies found": f"{caught}/{len(planted)}",
           "peak memory (MB)": round(peak_mb)}
    print_table("similarity at scale (one thread, nice 19 on a shared machine)", [row])
    write_json("similarity_scale", {"row": row, "class_made_seconds": round(made, 1),
                                    "thresholds": load_thresholds()["source"]})


if __name__ == "__main__":
    main()
