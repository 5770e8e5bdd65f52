"""How long a training run will take on this machine, said before it starts: a short timed probe, never a promise.

Two ways, both timing real training steps (the recipe's batch size, augmentation, loss, optimiser, precision and
thread count) and the evaluation after each epoch:

- ``estimate_fit(model, train_data, val_data, cfg)``: the model itself (``autograder release`` times the reference;
  a notebook can time the student's model just before training);
- ``estimate_recipe(recipe, train_data, val_data)``: before the student's model exists (the notebook's set-up cell):
  a stand-in network from ``course_lib.models`` is timed and the result scaled by the ratio of the homework model's
  declared FLOPs (``Recipe.train_gflops``) to the stand-in's, both models of the recipe together.

``device_check(mode, train_data, val_data, insist)`` is the set-up cell's guard: it says which device will train,
and in a mode meant for a GPU on a machine without one it says how long that would take and stops unless the student
insists. Times depend on the machine and its load; results never do (``course_lib.train.loop``).
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, replace

import torch
from torch import nn

from course_lib.data.dataset import SegmentationTensors
from course_lib.data.loader import Augment, TensorLoader
from course_lib.losses import build_loss
from course_lib.train.config import TrainConfig
from course_lib.train.loop import _uses_channels_last, build_optimizer, evaluate, train_one_epoch
from course_lib.train.recipes import Recipe, get_recipe
from course_lib.train.runtime import cpu_has_native_bf16, cpu_threads, deterministic_algorithms, select_device

PROBE_STEPS = 4
WARMUP_STEPS = 2


class TrainingOnCPU(RuntimeError):
    """A mode meant for a GPU was started on a machine without one; the message says how long it would take."""


def describe_device(device: torch.device | str) -> str:
    """E.g. ``"cuda (NVIDIA H200, 139 GB)"``, ``"cpu (2 cores, bf16 in hardware)"``, ``"mps (Apple GPU)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda ({props.name}, {props.total_memory / 2**30:.0f} GB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    bf16 = ", bf16 in hardware" if cpu_has_native_bf16() else ""
    return f"cpu ({os.cpu_count()} cores{bf16})"


def duration(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"3.1 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class TrainingEstimate:
    """What a run will cost here, from a timed probe.

    Attributes:
        seconds: the whole run (training steps and every evaluation).
        seconds_per_step: one optimisation step of ``batch_size`` images.
        steps: optimisation steps of the run; ``epochs``: its epochs.
        batch_size: images per step.
        device: ``describe_device`` of where it was measured.
        how: what was timed, in words.
    """

    seconds: float
    seconds_per_step: float
    steps: int
    epochs: int
    batch_size: int
    device: str
    how: str

    def describe(self) -> str:
        return (f"about {duration(self.seconds)} for {self.epochs} epochs on {self.device} (an estimate from "
                f"{self.how}: {self.seconds_per_step:.3g} s per step of {self.batch_size} images, {self.steps:,} steps)")

    def __add__(self, other: "TrainingEstimate") -> "TrainingEstimate":
        return replace(self, seconds=self.seconds + other.seconds, steps=self.steps + other.steps,
                       seconds_per_step=(self.seconds_per_step + other.seconds_per_step) / 2)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_steps(model: nn.Module, data: SegmentationTensors, cfg: TrainConfig, device: torch.device,
                 steps: int, warmup: int) -> float:
    """Seconds per optimisation step of a copy of ``model`` (the recipe's step: augmentation, loss, optimiser)."""
    model = copy.deepcopy(model).to(device)
    if _uses_channels_last(device, cfg.channels_last):
        model.to(memory_format=torch.channels_last)
    model.train()
    loss_fn = build_loss(cfg.loss, ignore_index=data.ignore_index).to(device)
    optimizer = build_optimizer(model, cfg)
    batch = min(cfg.batch_size, len(data))
    augment = Augment(scale=cfg.scale_range) if cfg.augment else None

    def run(count: int) -> float:
        loader = TensorLoader(data.subset(batch * count), batch, shuffle=True, augment=augment, device=device,
                              drop_last=True, seed=cfg.seed)
        _sync(device)
        start = time.perf_counter()
        train_one_epoch(model, loader, loss_fn, optimizer, device, cfg)
        _sync(device)
        return time.perf_counter() - start

    count = max(1, min(steps, len(data) // batch))
    run(max(1, min(warmup, len(data) // batch)))
    return run(count) / count


def _timed_evaluation(model: nn.Module, data: SegmentationTensors, cfg: TrainConfig, device: torch.device) -> float:
    """Seconds to evaluate the whole of ``data`` once (timed on at most 256 images)."""
    sample = data.subset(min(len(data), 256))
    model = copy.deepcopy(model).to(device)
    evaluate(model, sample.subset(min(len(sample), 16)), device, amp=cfg.amp, channels_last=cfg.channels_last)
    _sync(device)
    start = time.perf_counter()
    evaluate(model, sample, device, amp=cfg.amp, channels_last=cfg.channels_last)
    _sync(device)
    return (time.perf_counter() - start) * len(data) / len(sample)


def estimate_fit(model: nn.Module, train_data: SegmentationTensors, val_data: SegmentationTensors, cfg: TrainConfig,
                 steps: int = PROBE_STEPS, warmup: int = WARMUP_STEPS) -> TrainingEstimate:
    """How long ``fit(model, train_data, val_data, cfg)`` will take here (the model is not changed).

    Times ``warmup`` then ``steps`` optimisation steps of a copy of the model on the device ``fit`` would use, and
    one evaluation, then counts the run's steps and evaluations.
    """
    device = select_device(cfg.device)
    with cpu_threads(cfg.num_threads if device.type == "cpu" else None), \
            deterministic_algorithms(cfg.deterministic and device.type == "cpu"):
        per_step = _timed_steps(model, train_data, cfg, device, steps, warmup)
        per_eval = _timed_evaluation(model, val_data, cfg, device)
    batch = min(cfg.batch_size, len(train_data))
    steps_per_epoch = len(train_data) // batch if len(train_data) >= cfg.batch_size else 1
    evaluations = len([e for e in range(1, cfg.num_epochs + 1) if e % cfg.eval_every == 0 or e == cfg.num_epochs])
    total = per_step * steps_per_epoch * cfg.num_epochs + per_eval * evaluations
    return TrainingEstimate(total, per_step, steps_per_epoch * cfg.num_epochs, cfg.num_epochs, batch,
                            describe_device(device), f"{steps} timed steps")


def _gflops(model: nn.Module, size: tuple[int, int]) -> float:
    """GFLOP of one training image (forward and backward) at ``size``, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(model).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 3, *size)).sum().backward()
    return counter.get_total_flops() / 2 / 1e9


def estimate_recipe(recipe: Recipe, train_data: SegmentationTensors, val_data: SegmentationTensors,
                    steps: int = PROBE_STEPS, warmup: int = WARMUP_STEPS) -> TrainingEstimate:
    """How long the recipe's two models (with and without downsampling) will take here, before they exist.

    A stand-in (``course_lib.models.FCN``) is timed on the data with the recipe's settings; its time is scaled by
    the homework model's declared FLOPs (``recipe.train_gflops``, at 64×64, scaled to the data's size) over the
    stand-in's own. Coarser than ``estimate_fit``: fine for minutes against hours.
    """
    from course_lib.models import FCN

    height, width = train_data.image_size
    stand_in = FCN(num_classes=train_data.num_classes, width=3 * recipe.model_kwargs.get("width", 16) // 2)
    measured = estimate_fit(stand_in, train_data, val_data, recipe.train, steps, warmup)
    ratio = sum(recipe.train_gflops) * (height * width / 64**2) / _gflops(stand_in, (height, width))
    return replace(measured, seconds=measured.seconds * ratio, seconds_per_step=measured.seconds_per_step * ratio,
                   steps=measured.steps * 2, how=f"{steps} timed steps of a stand-in network, scaled by FLOPs; "
                                                 "both models")


def device_check(mode: str, train_data: SegmentationTensors, val_data: SegmentationTensors, insist: bool = False,
                 insist_hint: str = "set INSIST = True in the first cell", log=print) -> torch.device:
    """The set-up cell's guard: prints the device that will train, and stops a GPU mode on a machine without one.

    Returns:
        The device (``select_device``).
    Raises:
        TrainingOnCPU: the mode's recipe is meant for a GPU, none is here, and ``insist`` is off; the message says
            how long both models would take here (``estimate_recipe``) and what to do.
    """
    recipe = get_recipe(mode)
    device = select_device(recipe.train.device)
    log(f"training on {describe_device(device)}: {mode} mode, {recipe.train.num_epochs} epochs per model")
    if recipe.device != "cuda" or device.type == "cuda":
        return device
    estimate = estimate_recipe(recipe, train_data, val_data)
    message = (f"{mode} mode is meant for a GPU and this machine has none: training both models here would take "
               f"{estimate.describe()}.")
    if not insist:
        raise TrainingOnCPU(f"{message} Run it on a GPU (the bundle's README: 'Training on a GPU'), or keep "
                            f"MODE = \"QUICK\" while developing; to train here anyway, {insist_hint}.")
    log(f"WARNING: {message} Training here anyway, as asked.")
    return device
