"""``make bench-gpu``: the homework's FULL recipe on a GPU, and grading with GPU evaluation, in one command.

1. **Training.** The homework's reference SegmentationModel with the FULL recipe (its model size, optimiser,
   schedule, loss, augmentation, bf16 autocast, channels-last) on the synthetic default and on CamVid (when its
   file is present), each without and with ``torch.compile``. Per run: epochs, seconds, the time to reach each tier
   (0.15 / 0.25 / 0.35), the final validation mIoU, training images per second (evaluation included), and the
   achieved FLOP/s (3 × the forward FLOPs counted by ``FlopCounterMode``) against the card's bf16 peak.
2. **Grading.** A simulated class (copies of the synthetic run's checkpoint with the source notebook's code) judged
   by the sandboxed judge with ``evaluate_on = "cuda"``: seconds per student and the device the predictions ran on.
   It needs the grader's packages (nbgrader and the rest of ``pip install -e ./autograder``) and says so when they
   are missing.

Runs on an offline GPU node that has PyTorch, torchvision, pandas, matplotlib and tqdm and nothing else, from a
checkout: ``PYTHONPATH=. python bench/gpu.py``. Each training run has a safety cap (``--cap-seconds``) so the whole
command stays within about 10 minutes on one GPU; a run that would exceed it stops with the recipe's message and
its row says so. Writes ``bench/results/full_recipe_gpu.json`` (with the card's name). Without a GPU it refuses,
unless ``--smoke`` (a tiny CPU run of every code path).

Usage: PYTHONPATH=. python bench/gpu.py [--epochs N] [--students 12] [--cap-seconds 110] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import ROOT, machine, peak_tflops, print_table, write_json

from autograder.reference.segmentation_hw import SegmentationModel
from course_lib.data import load_camvid, load_synthetic
from course_lib.submission import save_submission
from course_lib.train import TrainingTooSlow, evaluate, fit, select_device
from course_lib.train.recipes import FULL, MIOU_TIERS

CAMVID = ROOT.parent / "shared" / "data" / "camvid_seg96x128.npz"


def forward_flops_per_image(model: torch.nn.Module, shape: tuple[int, int], device: torch.device) -> float:
    """FLOPs of one forward pass on one (3, H, W) image (counted on a batch of 8)."""
    x = torch.randn(8, 3, *shape, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return counter.get_total_flops() / 8


def train_row(name: str, train, val, compile_model: bool, epochs: int, cap: float, device: torch.device) -> tuple[dict, torch.nn.Module]:
    """One FULL-recipe run; its row and the trained model."""
    kwargs = dict(FULL.model_kwargs, num_classes=train.num_classes)
    torch.manual_seed(0)
    model = SegmentationModel(**kwargs)
    cfg = replace(FULL.train, num_epochs=epochs, compile=compile_model, max_seconds=cap, progress=False,
                  device=str(device))
    flops = forward_flops_per_image(SegmentationModel(**kwargs).to(device), val.image_size, device)
    row = {"data": name, "compile": compile_model, "epochs": epochs, "images": len(train)}
    start = time.perf_counter()
    try:
        history = fit(model, train, val, cfg, log=None)
    except TrainingTooSlow as err:
        row.update(stopped=str(err).splitlines()[0][:160], seconds=round(time.perf_counter() - start, 1))
        return row, model
    seconds = history.total_seconds
    images_per_second = epochs * len(train) / seconds
    achieved = 3 * flops * images_per_second / 1e12
    peak = peak_tflops()
    row.update(seconds=round(seconds, 1), final_miou=round(history.final.val_miou, 4),
               images_per_s=round(images_per_second), tflops=round(achieved, 2),
               peak_fraction=round(achieved / peak, 4) if peak else None)
    for tier, threshold in MIOU_TIERS.items():
        reached = next((r.seconds for r in history.records if r.val_miou >= threshold), None)
        row[f"s_to_{tier}"] = round(reached, 1) if reached is not None else None
    row["model_kwargs"] = kwargs
    return row, model


def grading_rows(model: torch.nn.Module, kwargs: dict, val, students: int) -> list[dict]:
    """The simulated class judged with GPU evaluation; a row that says why when the grader's packages are missing."""
    try:
        import nbgrader  # noqa: F401

        from autograder.heldout import grading_data
        from autograder.judge import judge_submission
        from autograder.term import GradedSetting
    except ImportError as err:
        return [{"part": "grading", "skipped": f"the grader's packages are missing ({err}); "
                 "pip install -e . -e ./autograder to run this part"}]
    import os

    os.environ.setdefault("SEGMENTATION_TERM_SECRET", "bench-gpu-own-term-secret")
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    try:
        reference = work / "reference"
        reference.mkdir()
        shutil.copy(ROOT / "source" / "segmentation_hw" / "segmentation_hw.ipynb", reference)
        metrics = evaluate(model, val, next(model.parameters()).device)
        save_submission(model.float(), kwargs, {"miou": metrics.miou, "pixel_accuracy": metrics.pixel_accuracy,
                                                "num_parameters": sum(p.numel() for p in model.parameters()),
                                                "training_minutes": 0.0}, reference, data=val, mode="FULL")
        data = grading_data(work, GradedSetting(evaluate_on="cuda" if torch.cuda.is_available() else "cpu"))
        seconds, devices, points = [], set(), []
        for i in range(students):
            folder = work / f"student{i}"
            shutil.copytree(reference, folder)
            verdict = judge_submission(folder, "segmentation_hw", data)
            seconds.append(verdict.seconds)
            devices.add(verdict.sandbox.get("device", "?") + (f" ({verdict.sandbox['device_note']})"
                                                            if verdict.sandbox.get("device_note") else ""))
            points.append(round(verdict.miou["effective"], 4) if verdict.miou else None)
        return [{"part": "grading", "students": students, "s_per_student": round(sum(seconds) / students, 2),
                 "first_s": round(seconds[0], 2), "evaluated_on": ", ".join(sorted(devices)),
                 "recomputed_miou": points[0]}]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=FULL.train.num_epochs)
    parser.add_argument("--students", type=int, default=12)
    parser.add_argument("--cap-seconds", type=float, default=110.0, help="safety cap of each training run")
    parser.add_argument("--smoke", action="store_true", help="a tiny CPU run of every code path (tests)")
    args = parser.parse_args()
    device = select_device()
    if device.type != "cuda" and not args.smoke:
        print("no GPU here (torch.cuda.is_available() is False): nothing measured. Run `make bench-gpu` on a GPU "
              "machine, or add --smoke for a tiny CPU run of the code paths.")
        sys.exit(2)
    data = {"synthetic": (load_synthetic("train"), load_synthetic("val"))}
    if CAMVID.is_file():
        data["camvid"] = (load_camvid(CAMVID, "train"), load_camvid(CAMVID, "val"))
    epochs = args.epochs
    if args.smoke:
        data = {k: (train.subset(32), val.subset(16)) for k, (train, val) in data.items()}
        epochs, args.students = 1, 2
    rows, trained = [], None
    for name, (train, val) in data.items():
        for compile_model in (False, True):
            if compile_model and device.type != "cuda":
                continue  # torch.compile is part of the CUDA recipe only
            row, model = train_row(name, train, val, compile_model, epochs, args.cap_seconds, device)
            rows.append(row)
            if name == "synthetic" and not compile_model:
                trained = (model, row.get("model_kwargs"), val)
    for row in rows:
        row.pop("model_kwargs", None)
    print_table(f"FULL recipe of the homework's reference on {machine().get('gpu', 'CPU (smoke)')}", rows)
    grading = grading_rows(trained[0], trained[1] or dict(FULL.model_kwargs), trained[2], args.students) \
        if trained and trained[1] else [{"part": "grading", "skipped": "the synthetic run did not finish"}]
    print_table("grading a simulated class, predictions on the GPU", grading)
    if not args.smoke:
        write_json("full_recipe", {"device": machine().get("gpu"), "training": rows, "grading": grading})
    else:
        print(json.dumps({"smoke": True, "training": rows, "grading": grading})[:2000])


if __name__ == "__main__":
    main()
