"""Training throughput of every reference model at 64×64: images per second (forward + backward + step),
and on a GPU the achieved FLOP/s against the card's bf16 peak.

Usage: python bench/model_throughput.py [--batch-size 64] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from common import peak_tflops, print_table, write_json

from autograder.reference.segmentation_hw import SegmentationModel
from course_lib.models import build_model, count_parameters
from course_lib.train import select_device
from course_lib.train.loop import _autocast, _prepare_inputs  # the execution settings fit uses

MODELS = {
    "homework reference (w16, down)": lambda: SegmentationModel(width=16, num_blocks=2, downsample=True),
    "homework reference (w16, no down)": lambda: SegmentationModel(width=16, num_blocks=2, downsample=False),
    "pixelwise": lambda: build_model("pixelwise"),
    "fcn": lambda: build_model("fcn"),
    "unet (w32, depth 4)": lambda: build_model("unet"),
    "unet (w16, depth 3)": lambda: build_model("unet", base_width=16, depth=3),
    "deeplabv3": lambda: build_model("deeplabv3"),
    "segformer": lambda: build_model("segformer"),
}


def train_step(model, optimizer, images, masks, device):
    """One optimisation step as ``fit`` runs it: channels-last, bf16 autocast on CUDA and on a CPU with native bf16."""
    with _autocast(device, True):
        loss = F.cross_entropy(model(_prepare_inputs(images, device, True)).float(), masks, ignore_index=255)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = select_device()
    peak = peak_tflops()
    rows = []
    for name, make in MODELS.items():
        model = make().to(device).to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        images = torch.randn(args.batch_size, 3, 64, 64, device=device)
        masks = torch.randint(0, 21, (args.batch_size, 64, 64), device=device)
        with FlopCounterMode(display=False) as counter:
            train_step(model, optimizer, images, masks, device)
        flops_per_step = counter.get_total_flops()
        for _ in range(2):
            train_step(model, optimizer, images, masks, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            train_step(model, optimizer, images, masks, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / args.steps
        row = {"model": name, "params": count_parameters(model), "images_per_s": round(args.batch_size / seconds, 1),
               "gflop_per_image": round(flops_per_step / args.batch_size / 1e9, 3),
               "achieved_tflops": round(flops_per_step / seconds / 1e12, 3)}
        if peak:
            row["fraction_of_bf16_peak"] = round(row["achieved_tflops"] / peak, 4)
        rows.append(row)
    print_table(f"training throughput at 64x64, batch {args.batch_size}, {device}", rows)
    write_json("model_throughput", {"batch_size": args.batch_size, "device": str(device), "rows": rows})


if __name__ == "__main__":
    main()
