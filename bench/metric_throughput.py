"""Metric throughput: course_lib's bincount confusion matrix against torchmetrics' MulticlassJaccardIndex on the
same tensors (updates per second, and the ratio), plus a check that both give the same mIoU.

Usage: python bench/metric_throughput.py [--batches 50] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import time

import torch
from torchmetrics.classification import MulticlassJaccardIndex

from common import print_table, write_json

from course_lib.metrics import ConfusionMatrix, mean_iou
from course_lib.train import select_device


def timed(fn, repeats: int, device) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    device = select_device()
    g = torch.Generator().manual_seed(0)
    preds = torch.randint(0, 21, (args.batches, args.batch_size, 64, 64), generator=g).to(device)
    target = torch.randint(0, 21, (args.batches, args.batch_size, 64, 64), generator=g).to(device)
    target[:, :, :4] = 255

    def ours():
        cm = ConfusionMatrix(21, device=device)
        for p, t in zip(preds, target):
            cm.update(p, t)
        return mean_iou(cm.matrix)

    def oracle():
        metric = MulticlassJaccardIndex(num_classes=21, ignore_index=255, average="macro").to(device)
        for p, t in zip(preds, target):
            metric.update(p, t)
        return float(metric.compute())

    assert abs(ours() - oracle()) < 1e-6
    t_ours, t_oracle = timed(ours, 3, device), timed(oracle, 3, device)
    pixels = preds.numel()
    rows = [{"implementation": "course_lib ConfusionMatrix", "mpixels_per_s": round(pixels / t_ours / 1e6, 1)},
            {"implementation": "torchmetrics MulticlassJaccardIndex", "mpixels_per_s": round(pixels / t_oracle / 1e6, 1)}]
    print_table(f"mIoU over {args.batches} batches of {args.batch_size}x64x64, {device}", rows)
    ratio = t_oracle / t_ours
    print(f"course_lib is {ratio:.2f}x the speed of torchmetrics (same mIoU to 1e-6)")
    write_json("metric_throughput", {"device": str(device), "rows": rows, "speed_ratio_vs_torchmetrics": round(ratio, 3)})


if __name__ == "__main__":
    main()
