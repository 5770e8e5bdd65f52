"""How far an honest model falls on the judge's secretly transformed copies of a public validation split, against
a model that answers the public split by lookup (the calibration of ``autograder.heldout.HELDOUT_GAP``).

On CamVid (real photos, from shared/data), the homework's reference SegmentationModel is trained with the QUICK
recipe's settings for each epoch budget given; each is evaluated on the validation split and on its transformed
copies (three secrets). A lookup model (the validation masks in a buffer, answered by image) is evaluated the same
way. The defence holds when every honest gap is well under ``HELDOUT_GAP`` and the lookup's is far over it.
Skips cleanly when the file is absent.

Usage: python bench/heldout_gap.py [--path ../shared/data/camvid_seg96x128.npz] [--epochs 5 20]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch
from common import ROOT, print_table, write_json

from autograder.heldout import HELDOUT_GAP, transformed_copies
from autograder.reference.segmentation_hw import SegmentationModel
from course_lib.data import SegmentationTensors, load_camvid, normalize_images
from course_lib.metrics import ConfusionMatrix, mean_iou
from course_lib.train import fit
from course_lib.train.recipes import QUICK

DEFAULT = ROOT.parent / "shared" / "data" / "camvid_seg96x128.npz"
SECRETS = (11, 22, 33)


@torch.no_grad()
def miou_of(predict, data: SegmentationTensors) -> float:
    """mIoU of ``predict`` ((N, 3, H, W) uint8 images → (N, H, W) class ids) on ``data``."""
    cm = ConfusionMatrix(data.num_classes)
    cm.update(predict(data.images).long(), data.masks.long())
    return mean_iou(cm.matrix)


def model_predictor(model: torch.nn.Module):
    model = model.float().cpu().eval()
    return lambda images: model(normalize_images(images)).argmax(1)


def lookup_predictor(val: SegmentationTensors):
    """What a memorising submission does: the stored mask of an image seen before, class 0 for any other."""
    table = {hash(img.numpy().tobytes()): mask for img, mask in zip(val.images, val.masks)}
    blank = torch.zeros(val.image_size, dtype=torch.uint8)
    return lambda images: torch.stack([table.get(hash(img.numpy().tobytes()), blank) for img in images]).clamp(
        max=val.num_classes - 1)


def gap_rows(name: str, predict, val: SegmentationTensors) -> list[dict]:
    public = miou_of(predict, val)
    rows = []
    for secret in SECRETS:
        copies = miou_of(predict, transformed_copies(val, secret))
        rows.append({"model": name, "secret": secret, "public_miou": round(public, 4),
                     "transformed_miou": round(copies, 4), "gap": round(public - copies, 4),
                     "graded_on": "transformed" if public - copies > HELDOUT_GAP else "public"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT)
    parser.add_argument("--epochs", type=int, nargs="+", default=[5, 20])
    args = parser.parse_args()
    if not args.path.is_file():
        print(f"skipped: no CamVid file at {args.path}")
        return
    train, val = load_camvid(args.path, "train"), load_camvid(args.path, "val")
    rows = gap_rows("lookup (memorised masks)", lookup_predictor(val), val)
    for epochs in args.epochs:
        torch.manual_seed(0)
        model = SegmentationModel(**dict(QUICK.model_kwargs, num_classes=train.num_classes))
        cfg = replace(QUICK.train, num_epochs=epochs, max_seconds=None, progress=False)
        fit(model, train, val, cfg, log=None)
        rows += gap_rows(f"reference, {epochs} epochs", model_predictor(model), val)
    print_table(f"honest and memorising models on CamVid val ({len(val)} images, {val.image_size[0]}x"
                f"{val.image_size[1]}) and its transformed copies; HELDOUT_GAP = {HELDOUT_GAP}", rows)
    write_json("heldout_gap", {"heldout_gap": HELDOUT_GAP, "rows": rows})


if __name__ == "__main__":
    main()
