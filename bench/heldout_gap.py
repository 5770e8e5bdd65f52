"""What the tier rule costs honest students, and what it leaves a lookup: the held-out figure alone decides the tiers
(``autograder.judge``), the public validation split only cross-checks the Q1 table.

For honest models (the homework's reference, with and without downsampling, at several epoch budgets of the QUICK
recipe) on the synthetic default and on CamVid (real photos, from shared/data, when present), each evaluated on the
public validation split and on the grader's held-out data for three secrets (``autograder.heldout``: held-out scenes
on the synthetic default, secretly transformed copies on CamVid). Per row: the tiers the held-out rule gives, the
tiers the public figure would give (what a student reads in their notebook), and round 2's rule (the public figure
unless it is more than ``HELDOUT_GAP`` above the held-out one); ``change`` is the held-out rule's tiers minus the
public figure's. A lookup answering every public image, and one answering only a few (kept under the gap), show
what each rule leaves them.

Usage: python bench/heldout_gap.py [--data synthetic camvid] [--camvid ../shared/data/camvid_seg96x128.npz]
       [--epochs 1 2 5] [--camvid-epochs 5 20]
(``--data`` one of them: its rows replace that data set's rows in the JSON written before, the others are kept.)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from common import RESULTS, ROOT, print_table, write_json

from autograder.heldout import HELDOUT_GAP, HELDOUT_SCENES, transformed_copies
from autograder.reference.segmentation_hw import SegmentationModel
from autograder.term import secret_generator
from course_lib.data import SegmentationTensors, load_camvid, load_synthetic, make_synthetic, normalize_images
from course_lib.metrics import ConfusionMatrix, mean_iou
from course_lib.train import fit
from course_lib.train.recipes import MIOU_TIERS, QUICK

CAMVID = next((p for p in (ROOT.parent / "shared", ROOT.parents[1] / "shared")
               if (p / "data" / "camvid_seg96x128.npz").is_file()), ROOT.parent / "shared") / "data" / "camvid_seg96x128.npz"
SECRETS = ("bench-secret-1", "bench-secret-2", "bench-secret-3")
CAPPED = 25  # public images a capped lookup answers (of the synthetic default's 500)


@torch.no_grad()
def miou_of(predict, data: SegmentationTensors) -> float:
    """mIoU of ``predict`` ((N, 3, H, W) uint8 images → (N, H, W) class ids) on ``data``."""
    cm = ConfusionMatrix(data.num_classes)
    for images, masks in zip(data.images.split(100), data.masks.split(100)):
        cm.update(predict(images).long().clamp(max=data.num_classes - 1), masks.long())
    return mean_iou(cm.matrix)


def model_predictor(model: torch.nn.Module):
    model = model.float().cpu().eval()
    return lambda images: model(normalize_images(images)).argmax(1)


def lookup_predictor(val: SegmentationTensors, answer, known: int | None = None):
    """A memorising submission: the stored mask of each of the first ``known`` public images (all by default), and
    ``answer`` (an honest model's prediction) for any other image."""
    count = len(val) if known is None else known
    table = {img.numpy().tobytes(): mask for img, mask in zip(val.images[:count], val.masks[:count])}
    return lambda images: torch.stack([table[img.numpy().tobytes()].long() if img.numpy().tobytes() in table
                                       else pred for img, pred in zip(images, answer(images))])


def tiers(miou: float) -> int:
    return sum(miou >= threshold for threshold in MIOU_TIERS.values())


def rows_for(name: str, data_name: str, predict, val: SegmentationTensors, heldouts: dict) -> list[dict]:
    public = miou_of(predict, val)
    rows = []
    for secret, heldout in heldouts.items():
        held = miou_of(predict, heldout)
        round2 = held if public - held > HELDOUT_GAP else public
        rows.append({"data": data_name, "model": name, "secret": secret, "public_miou": round(public, 4),
                     "heldout_miou": round(held, 4), "gap": round(public - held, 4), "tiers_heldout": tiers(held),
                     "tiers_public": tiers(public), "tiers_round2": tiers(round2),
                     "change": tiers(held) - tiers(public)})
    return rows


def train(kwargs: dict, epochs: int, train_data, val) -> torch.nn.Module:
    torch.manual_seed(0)
    model = SegmentationModel(**kwargs)
    cfg = replace(QUICK.train, num_epochs=epochs, max_seconds=None, progress=False)
    fit(model, train_data, val, cfg, log=None)
    return model


def synthetic_rows(epochs: list[int]) -> list[dict]:
    train_data, val = load_synthetic("train"), load_synthetic("val")
    heldouts = {s: make_synthetic(HELDOUT_SCENES, size=64, generator=secret_generator(s, "heldout-scenes")) for s in SECRETS}
    rows = []
    first = None
    for downsample in (True, False):
        for budget in (epochs if downsample else epochs[-1:]):
            kwargs = dict(QUICK.model_kwargs, downsample=downsample)
            model = train(kwargs, budget, train_data, val)
            predict = model_predictor(model)
            first = first or predict
            label = f"reference{'' if downsample else ' without downsampling'}, {budget} epoch(s)"
            rows += rows_for(label, "synthetic", predict, val, heldouts)
            if not downsample:  # the weak honest model near the first tier, and its capped lookup
                rows += rows_for(f"capped lookup ({CAPPED} public images) on it", "synthetic",
                                 lookup_predictor(val, predict, CAPPED), val, heldouts)
    rows += rows_for("lookup (every public mask)", "synthetic", lookup_predictor(val, first), val, heldouts)
    return rows


def camvid_rows(path: Path, epochs: list[int]) -> list[dict]:
    train_data, val = load_camvid(path, "train"), load_camvid(path, "val")
    heldouts = {s: transformed_copies(val, secret_generator(s, "transformed-copies")) for s in SECRETS}
    rows, first = [], None
    for budget in epochs:
        model = train(dict(QUICK.model_kwargs, num_classes=train_data.num_classes), budget, train_data, val)
        predict = model_predictor(model)
        first = first or predict
        rows += rows_for(f"reference, {budget} epoch(s)", "camvid", predict, val, heldouts)
    rows += rows_for("lookup (every public mask)", "camvid", lookup_predictor(val, first), val, heldouts)
    return rows


def summarise(rows: list[dict]) -> dict:
    honest = [r for r in rows if "lookup" not in r["model"]]
    lookups = [r for r in rows if "lookup" in r["model"]]
    return {
        "honest_rows": len(honest),
        "honest_gap_range": [min(r["gap"] for r in honest), max(r["gap"] for r in honest)] if honest else None,
        "honest_tiers_lost": sum(-r["change"] for r in honest if r["change"] < 0),
        "honest_tiers_gained": sum(r["change"] for r in honest if r["change"] > 0),
        "honest_rows_changed": sum(r["change"] != 0 for r in honest),
        "lookup_tiers_heldout_rule": {r["model"]: r["tiers_heldout"] for r in lookups},
        "lookup_tiers_round2_rule": {r["model"]: r["tiers_round2"] for r in lookups},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, default=CAMVID)
    parser.add_argument("--data", nargs="+", choices=("synthetic", "camvid"), default=["synthetic", "camvid"])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 2, 5], help="synthetic epoch budgets")
    parser.add_argument("--camvid-epochs", type=int, nargs="+", default=[5, 20])
    args = parser.parse_args()
    rows = synthetic_rows(args.epochs) if "synthetic" in args.data else []
    if "camvid" in args.data:
        if args.camvid.is_file():
            rows += camvid_rows(args.camvid, args.camvid_epochs)
        else:
            print(f"CamVid skipped: no file at {args.camvid}")
    earlier = RESULTS / "heldout_gap_cpu.json"
    if earlier.is_file():  # the data sets not run now keep their rows
        rows = [r for r in json.loads(earlier.read_text()).get("rows", []) if r.get("data") not in args.data] + rows
    print_table(f"the held-out rule against the public figure (tiers {MIOU_TIERS}; round 2's gap rule: "
                f"{HELDOUT_GAP})", rows)
    summary = {data: summarise([r for r in rows if r["data"] == data]) for data in sorted({r["data"] for r in rows})}
    print(summary)
    write_json("heldout_gap", {"tiers": MIOU_TIERS, "heldout_gap": HELDOUT_GAP, "rule": "held-out figure alone",
                               "summary": summary, "rows": rows})

if __name__ == "__main__":
    main()
