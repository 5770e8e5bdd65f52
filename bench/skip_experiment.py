"""Topic 2's skip-connection experiment over many seeds: what the concepts notebook quotes as measured.

Two small U-Nets, identical but for the skip connections (``course_lib.experiments``), are trained for the same
number of steps from the same seed; both are scored on the validation images by mIoU (course_lib's confusion
matrix) and by boundary F1 at tolerances 0 and 1 (the grader's oracle, ``autograder.oracles``), per image then
averaged, as the notebook's demo does with the student's own functions. Each seed changes the initial weights and
the order of the batches; the data stay the same. One CPU thread per training: the figures repeat on any machine
with the same instruction set.

Usage: python bench/skip_experiment.py [--seeds 10] [--steps 100 300]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import print_table, write_json

from autograder.oracles import binary_boundary_f1
from course_lib.experiments import foreground_task, predict, train_skip_unet
from course_lib.metrics import ConfusionMatrix, mean_iou

TRAIN_IMAGES, VAL_IMAGES = 128, 64  # the notebook's sizes


def scores(pred, labels) -> dict:
    cm = ConfusionMatrix(2)
    cm.update(pred, labels)
    row = {"miou": mean_iou(cm.matrix)}
    for tolerance in (0, 1):
        row[f"bf1_t{tolerance}"] = statistics.fmean(
            binary_boundary_f1((p == 1) & (y != 255), y == 1, tolerance) for p, y in zip(pred, labels))
    return row


def summary(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 4), "sd": round(statistics.stdev(values), 4),
            "median": round(statistics.median(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 300])
    args = parser.parse_args()
    images, labels = foreground_task("train", TRAIN_IMAGES)
    val_images, val_labels = foreground_task("val", VAL_IMAGES)
    rows, settings = [], {}
    for steps in args.steps:
        drops = {"miou": [], "bf1_t0": [], "bf1_t1": []}
        for seed in range(args.seeds):
            start = time.perf_counter()
            result = {skips: scores(predict(train_skip_unet(images, labels, skips, seed, steps), val_images), val_labels)
                      for skips in (True, False)}
            row = {"steps": steps, "seed": seed}
            for key in drops:
                row[f"{key}_skips"] = round(result[True][key], 4)
                row[f"{key}_none"] = round(result[False][key], 4)
                drops[key].append(result[True][key] - result[False][key])
                row[f"{key}_drop"] = round(drops[key][-1], 4)
            row["seconds"] = round(time.perf_counter() - start, 1)
            rows.append(row)
            print(row, flush=True)
        settings[str(steps)] = {
            "drop_without_skips": {key: summary(values) for key, values in drops.items()},
            "seeds_where_bf1_t0_drops_more_than_miou": sum(b > m for b, m in zip(drops["bf1_t0"], drops["miou"])),
            "seeds_where_skips_lose_miou": sum(m < 0 for m in drops["miou"]),
            "seeds": args.seeds}
    print_table("skip experiment: scores with and without skips, per seed", rows)
    for steps, info in settings.items():
        print(f"{steps} steps: drop without skips {info['drop_without_skips']}; boundary F1 (t0) fell more than "
              f"mIoU in {info['seeds_where_bf1_t0_drops_more_than_miou']} of {info['seeds']} seeds")
    write_json("skip_experiment", {"train_images": TRAIN_IMAGES, "val_images": VAL_IMAGES, "rows": rows,
                                   "settings": settings})


if __name__ == "__main__":
    main()
