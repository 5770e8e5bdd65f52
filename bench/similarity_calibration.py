"""Calibration of ``python -m autograder similarity``: every score's distribution among honest pairs, measured.

An honest class is trained with the homework's QUICK recipe on the synthetic default, each student with their own
implementation (``bench/honest_students.py``: the reference, the structure tests' alternatives and independently
drawn ways of writing the same specification; each passes the real checks). Two regimes:

- ``seeds``: every student trains with a seed of their own (the issue's calibration class: independent trainings);
- ``course``: every student trains as the released notebook makes them, with the recipe's fixed seed 0.

Each student becomes a folder ``submitted/<student>/segmentation_hw/`` (the release notebook with their cells, the
checkpoint and results file that ``save_submission`` wrote), the real tool scores every pair, and the distribution of
each score among honest pairs is recorded. Planted copies (the same notebook renamed and reformatted; a checkpoint
copied, copied and fine-tuned for one epoch, re-saved under another name) are scored beside them, to show the margin.

The thresholds the tool uses are written to ``autograder/similarity/thresholds.json`` (with ``--write-thresholds``):
for each score, the highest honest value of the ``seeds`` class plus a stated margin, with where it came from.

Trained checkpoints are cached (``$SEGMENTATION_CACHE_DIR/similarity_calibration``, keyed by the student's code,
the seed and the recipe), so reruns only score. Training is CPU-heavy (about 2 minutes per student on one thread):
run it in the background with ``nice -n 19``; ``--workers`` processes train one model each, one thread apiece.

Usage: python bench/similarity_calibration.py [--students 20] [--workers 2] [--train-only | --score-only]
       [--write-thresholds] [--same-seed-probe 8]
Writes bench/results/similarity_calibration_{cpu,gpu}.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, print_table, write_json  # noqa: E402
from honest_students import Student, check_implementation, honest_class, namespace, student_notebook  # noqa: E402

ASSIGNMENT = "segmentation_hw"
REGIMES = ("seeds", "course")


def cache_dir() -> Path:
    base = Path(os.environ.get("SEGMENTATION_CACHE_DIR") or Path.home() / ".cache" / "segmentation-course")
    return base / "similarity_calibration"


def training_key(student: Student, seed: int) -> str:
    """What makes a student's checkpoint: their code, the seed, the recipe and the library that trains it."""
    from course_lib.train.recipes import QUICK

    digest = hashlib.sha256()
    digest.update(student.residual_block.encode() + student.segmentation_model.encode())
    digest.update(repr((seed, QUICK)).encode())
    for file in sorted((ROOT / "course_lib").rglob("*.py")):
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def seed_of(regime: str, index: int) -> int:
    return 0 if regime == "course" else 1000 + index


def train_student(job: tuple[Student, int, str]) -> str:
    """Trains one student's model as the notebook's training cell does and saves their submission into the cache."""
    student, seed, key = job
    import torch

    from course_lib.data import load_synthetic
    from course_lib.models import count_parameters
    from course_lib.submission import save_submission
    from course_lib.train import evaluate, fit, seed_everything
    from course_lib.train.recipes import QUICK

    torch.set_num_threads(1)
    out = cache_dir() / key
    if (out / f"{ASSIGNMENT}_checkpoint.pt").is_file():
        return f"{student.name} seed {seed}: cached"
    train, val = load_synthetic("train"), load_synthetic("val")
    ns = namespace(student)
    cfg = replace(QUICK.train, seed=seed, progress=False, max_seconds=None)  # a busy machine: later, the same model
    kwargs = dict(QUICK.model_kwargs, num_classes=val.num_classes)
    seed_everything(seed)
    model = ns["SegmentationModel"](**kwargs)
    start = time.perf_counter()
    history = fit(model, train, val, cfg, log=None)
    minutes = (time.perf_counter() - start) / 60
    final = evaluate(model, val, num_threads=1)
    metrics = dict(miou=final.miou, pixel_accuracy=final.pixel_accuracy, num_parameters=count_parameters(model),
                   training_minutes=minutes)
    tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=cache_dir()))
    save_submission(model, kwargs, metrics, tmp, ASSIGNMENT, history=history, data=val, mode="QUICK")
    if out.exists():  # another worker finished it first
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, out)
    return f"{student.name} seed {seed}: mIoU {final.miou:.4f} in {minutes:.1f} min"


def train_class(students: list[Student], regimes: tuple[str, ...], workers: int, reverse: bool = False) -> None:
    jobs = []
    for regime in regimes:
        for i, student in enumerate(students):
            seed = seed_of(regime, i)
            key = training_key(student, seed)
            if not (cache_dir() / key / f"{ASSIGNMENT}_checkpoint.pt").is_file() and (student, seed, key) not in jobs:
                jobs.append((student, seed, key))
    if reverse:  # a second launcher can start from the other end; a finished model is never trained twice
        jobs.reverse()
    cache_dir().mkdir(parents=True, exist_ok=True)
    print(f"{len(jobs)} models to train ({workers} workers, one thread each)", flush=True)
    if not jobs:
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        for line in pool.imap_unordered(_train_logged, jobs):
            print(time.strftime("%H:%M:%S"), line, flush=True)


def _train_logged(job: tuple[Student, int, str]) -> str:
    """``train_student`` whose failure is a line of the log, never the end of the other students' trainings."""
    try:
        return train_student(job)
    except Exception as err:  # noqa: BLE001 (one student's failure stays theirs)
        return f"{job[0].name} seed {job[1]}: FAILED {type(err).__name__}: {err}"


def same_seed_probe(students: list[Student], steps: int = 25) -> dict:
    """The released notebook's regime, cheaply: every student's model built after ``seed_everything(0)`` and trained
    for ``steps`` steps of the QUICK recipe (batch order seed 0) on the first images of the training split. Which
    students start from the same weights, and which are still bit for bit the same after those steps (the same
    arithmetic: training on stays identical) or already apart."""
    import torch

    from course_lib.data import load_synthetic
    from course_lib.train import fit, seed_everything
    from course_lib.train.recipes import QUICK

    torch.set_num_threads(1)
    cfg = replace(QUICK.train, num_epochs=1, seed=0, progress=False, max_seconds=None, augment=True)
    train, val = load_synthetic("train").subset(steps * cfg.batch_size), load_synthetic("val").subset(32)
    kwargs = dict(QUICK.model_kwargs, num_classes=train.num_classes)
    inits, trained = {}, {}
    for student in students:
        seed_everything(0)
        model = namespace(student)["SegmentationModel"](**kwargs)
        weights = lambda m: [t.detach().clone() for t in m.state_dict().values() if t.is_floating_point() and t.ndim >= 2]
        inits[student.name] = weights(model)
        fit(model, train, val, cfg, log=None)
        trained[student.name] = weights(model)

    def groups(table: dict) -> list[list[str]]:
        out: list[list[str]] = []
        for name, tensors in table.items():
            for group in out:
                other = table[group[0]]
                if len(other) == len(tensors) and all(torch.equal(a, b) for a, b in zip(other, tensors)):
                    group.append(name)
                    break
            else:
                out.append([name])
        return out

    def corr(a: list, b: list) -> float:
        values = []
        for x, y in zip(a, b):
            x, y = x.double().flatten() - x.double().mean(), y.double().flatten() - y.double().mean()
            values.append(float(x @ y / (x.norm() * y.norm())))
        return round(float(sorted(values)[len(values) // 2]), 4)

    names = list(trained)
    apart = [corr(trained[a], trained[b]) for i, a in enumerate(names) for b in names[i + 1:]
             if not all(torch.equal(x, y) for x, y in zip(trained[a], trained[b]))]
    return {"steps": steps, "students": len(names), "same_initial_weights": groups(inits),
            "bit_identical_after_steps": groups(trained),
            "median_layer_correlation_of_pairs_apart": sorted(apart)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--regimes", default="seeds,course")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--reverse", action="store_true", help="train the missing models last first")
    parser.add_argument("--same-seed-probe", type=int, metavar="STUDENTS", default=0,
                        help="only the released notebook's fixed-seed regime, 25 steps per student (cheap)")
    parser.add_argument("--write-thresholds", action="store_true")
    parser.add_argument("--score-only", action="store_true",
                        help="score the students trained so far (the others' code is still compared)")
    args = parser.parse_args()
    regimes = tuple(r for r in args.regimes.split(",") if r)
    students = honest_class(args.students)
    if args.same_seed_probe:
        probe = same_seed_probe(students[:args.same_seed_probe])
        print(json.dumps(probe, indent=1))
        write_json("similarity_same_seed_probe", probe)
        return
    if not (args.train_only or args.score_only):  # each implementation earns every point (also: honest_students.py)
        for student in students:
            check_implementation(student)
    if not args.score_only:
        train_class(students, regimes, args.workers, args.reverse)
    if args.train_only:
        return
    from similarity_scores import score_calibration  # the scoring half, kept apart from training

    score_calibration(students, regimes, args.write_thresholds)


if __name__ == "__main__":
    main()
