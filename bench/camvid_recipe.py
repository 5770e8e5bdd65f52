"""The homework's reference recipe on real photos: CamVid (11 classes + void) from shared/data, so that the
synthetic calibration is checked against real images.

Trains the reference SegmentationModel (width 16, 2 blocks per stage, with downsampling) with the QUICK recipe
(its epochs, batch 16) and with a longer one, at 96x128 (the file's size), and reports the validation
mIoU and the time. Skips cleanly when the file is absent.

Usage: python bench/camvid_recipe.py [--path ../shared/data/camvid_seg96x128.npz] [--long-epochs 40]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from common import ROOT, print_table, write_json

from autograder.reference.segmentation_hw import SegmentationModel
from course_lib.data import load_camvid
from course_lib.models import count_parameters
from course_lib.train import fit, select_device
from course_lib.train.recipes import QUICK

DEFAULT = ROOT.parent / "shared" / "data" / "camvid_seg96x128.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT)
    parser.add_argument("--long-epochs", type=int, default=40)
    args = parser.parse_args()
    if not args.path.is_file():
        print(f"skipped: no CamVid file at {args.path}")
        return
    train, val = load_camvid(args.path, "train"), load_camvid(args.path, "val")
    device = select_device()
    recipes = {
        f"QUICK ({QUICK.train.num_epochs} epochs)": replace(QUICK.train, batch_size=16, progress=False),
        f"long ({args.long_epochs} epochs)": replace(QUICK.train, num_epochs=args.long_epochs, batch_size=16,
                                                     scale_range=(0.5, 2.0), max_seconds=None, progress=False),
    }
    rows = []
    for name, cfg in recipes.items():
        model = SegmentationModel(**dict(QUICK.model_kwargs, num_classes=train.num_classes))
        history = fit(model, train, val, cfg, log=None)
        rows.append({"recipe": name, "device": device.type, "params": count_parameters(model),
                     "epochs": history.final.epoch, "seconds": round(history.total_seconds, 1),
                     "val_miou": round(history.final.val_miou, 4),
                     "pixel_acc": round(history.final.val_pixel_accuracy, 4)})
    print_table(f"CamVid {train.image_size[0]}x{train.image_size[1]}, train {len(train)} / val {len(val)}", rows)
    write_json("camvid_recipe", {"rows": rows})


if __name__ == "__main__":
    main()
