"""Where one QUICK-mode epoch of the homework's two models spends its time, on this machine's CPU.

For each model (with and without downsampling) and each execution setting (float32 contiguous, channels-last,
channels-last + bf16 autocast where the CPU has native bf16), trains on a slice of the QUICK training split with
the QUICK recipe's batch size and reports: images/s, the share spent making batches (permutation, normalisation,
the augmentation's ``grid_sample``), the share in forward + backward + optimiser step, evaluation images/s, and
the projected seconds per full epoch and per QUICK run. The setting ``fit`` uses is marked.

Usage: python bench/quick_epoch_profile.py [--images 1024]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from common import print_table, write_json

from autograder.reference.segmentation_hw import SegmentationModel
from course_lib.data import load_synthetic
from course_lib.data.synthetic import SPLIT_SIZES
from course_lib.data.loader import Augment, TensorLoader
from course_lib.losses import build_loss
from course_lib.train import evaluate
from course_lib.train.loop import _autocast, _prepare_inputs, build_optimizer
from course_lib.train.recipes import QUICK
from course_lib.train.runtime import cpu_has_native_bf16

SETTINGS = {"float32, contiguous": (False, False), "channels-last": (True, False), "channels-last + bf16": (True, True)}


def profile(downsample: bool, channels_last: bool, amp: bool, train, val) -> dict:
    cfg = replace(QUICK.train, channels_last=channels_last, amp=amp)
    device = torch.device("cpu")
    torch.manual_seed(0)
    model = SegmentationModel(**dict(QUICK.model_kwargs, downsample=downsample))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg)
    loss_fn = build_loss(cfg.loss, ignore_index=train.ignore_index)
    loader = TensorLoader(train, cfg.batch_size, shuffle=True, augment=Augment(scale=cfg.scale_range), drop_last=True)
    batches_s = step_s = 0.0
    images = 0
    batches = iter(loader)
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        try:
            x, y = next(batches)
        except StopIteration:
            break
        t1 = time.perf_counter()
        with _autocast(device, cfg.amp):
            logits = model(_prepare_inputs(x, device, cfg.channels_last))
        loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        t2 = time.perf_counter()
        batches_s, step_s, images = batches_s + t1 - t0, step_s + t2 - t1, images + x.shape[0]
    total = time.perf_counter() - start
    t0 = time.perf_counter()
    evaluate(model, val, device, amp=amp, channels_last=channels_last)
    eval_rate = len(val) / (time.perf_counter() - t0)
    epoch_s = SPLIT_SIZES["train"] / (images / total) + SPLIT_SIZES["val"] / eval_rate
    return {"train_img_s": round(images / total, 1), "batches_%": round(100 * batches_s / total, 1),
            "step_%": round(100 * step_s / total, 1), "eval_img_s": round(eval_rate, 1),
            "epoch_s": round(epoch_s, 1), "quick_run_s": round(epoch_s * QUICK.train.num_epochs, 1)}



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024, help="training images per measurement")
    args = parser.parse_args()
    train = load_synthetic("train", num_images=args.images)
    val = load_synthetic("val", num_images=256)
    native_bf16 = cpu_has_native_bf16()
    rows = []
    for downsample in (True, False):
        for name, (channels_last, amp) in SETTINGS.items():
            if amp and not native_bf16:
                continue
            used = channels_last == QUICK.train.channels_last and amp == (QUICK.train.amp and native_bf16)
            row = {"model": "with downsampling" if downsample else "without downsampling",
                   "setting": name + (" (fit)" if used else ""),
                   **profile(downsample, channels_last, amp, train, val)}
            rows.append(row)
            print_table("QUICK epoch profile (so far)", rows)
    print_table(f"QUICK epoch profile, CPU, {torch.get_num_threads()} threads, native bf16: {native_bf16}", rows)
    fit_rows = [r for r in rows if r["setting"].endswith("(fit)")]
    both = sum(r["quick_run_s"] for r in fit_rows)
    print(f"both QUICK models as fit runs them: about {both:.0f} s = {both / 60:.1f} min (projected from the slices)")
    write_json("quick_epoch_profile", {"native_bf16": native_bf16, "rows": rows, "both_models_quick_s": round(both, 1)})


if __name__ == "__main__":
    main()
