"""The training loop: ``fit`` runs epochs of ``train_one_epoch`` and ``evaluate`` and returns a ``History``.

Every function receives what it uses as arguments (model, data, loss, optimiser, device); nothing
is read from globals. A run is budgeted in epochs: the learning-rate schedule follows the step count only,
so the same seed gives the same model however fast or busy the machine is. The clock is only a safety cap
(``TrainConfig.max_seconds``) that stops a hopeless run with ``TrainingTooSlow``.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from course_lib.data.dataset import SegmentationTensors
from course_lib.data.loader import Augment, TensorLoader
from course_lib.losses import build_loss
from course_lib.metrics import ConfusionMatrix, iou_per_class, mean_iou, pixel_accuracy
from course_lib.train.config import TrainConfig
from course_lib.train.runtime import (Progress, cpu_has_native_bf16, cpu_threads, deterministic_algorithms,
                                     progress_enabled, seed_everything, select_device)


class TrainingTooSlow(RuntimeError):
    """The run would exceed ``TrainConfig.max_seconds`` on this machine; raised after an epoch, with the figures."""


@dataclass
class EpochRecord:
    """One row of the history."""

    epoch: int
    train_loss: float
    val_loss: float
    val_miou: float
    val_pixel_accuracy: float
    lr: float
    seconds: float  # wall-clock since the start of ``fit``


@dataclass
class History:
    """Per-epoch records of a run, plus how it ended."""

    records: list[EpochRecord] = field(default_factory=list)
    total_seconds: float = 0.0

    def column(self, name: str) -> list[float]:
        return [getattr(r, name) for r in self.records]

    @property
    def final(self) -> EpochRecord:
        if not self.records:
            raise ValueError("the history is empty: no epoch was completed")
        return self.records[-1]

    def to_dict(self) -> dict:
        return {"records": [asdict(r) for r in self.records], "total_seconds": self.total_seconds}

    @classmethod
    def from_dict(cls, values: dict) -> "History":
        """Inverse of ``to_dict``."""
        return cls([EpochRecord(**r) for r in values.get("records", [])], float(values.get("total_seconds", 0.0)))

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.records])


@dataclass
class Evaluation:
    """The result of ``evaluate``: scalar figures plus the confusion matrix they all come from."""

    loss: float
    miou: float
    pixel_accuracy: float
    iou_per_class: list[float]
    confusion: torch.Tensor  # (K, K) int64, rows = truth, columns = prediction


def uses_bf16(device: torch.device, amp: bool) -> bool:
    """Whether ``amp`` turns into bf16 autocast here: on CUDA, and on a CPU with native bf16 arithmetic
    (elsewhere bf16 is emulated and slower than float32)."""
    return amp and (device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()))


def _autocast(device: torch.device, enabled: bool):
    if uses_bf16(device, enabled):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _uses_channels_last(device: torch.device, channels_last: bool) -> bool:
    return channels_last and device.type in ("cuda", "cpu")


def _prepare_inputs(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    if _uses_channels_last(device, channels_last):
        return images.contiguous(memory_format=torch.channels_last)
    return images


@torch.no_grad()
def evaluate(model: nn.Module, data: SegmentationTensors, device: torch.device | str = "cpu", batch_size: int = 128,
             loss_fn: nn.Module | None = None, amp: bool = False, channels_last: bool = True,
             num_threads: int | None = None) -> Evaluation:
    """Runs the model over a split in eval mode and measures it.

    Args:
        model: maps (N, 3, H, W) normalised images to (N, K, H, W) logits.
        data: the split; K = ``data.num_classes``.
        loss_fn: optional, for the validation loss (NaN when absent).
        amp: bf16 autocast where ``uses_bf16`` allows it. Off by default: a reported figure is computed in
            float32, as the grader recomputes it; ``fit`` turns it on for the per-epoch curves.
        num_threads: torch's CPU threads for the pass (``None``: unchanged); pass the recipe's
            ``TrainConfig.num_threads`` to evaluate as it trained.
    Returns:
        ``Evaluation`` with mIoU and pixel accuracy from one confusion matrix accumulated over the split.
    """
    device = torch.device(device)
    with cpu_threads(num_threads if device.type == "cpu" else None):
        return _evaluate(model, data, device, batch_size, loss_fn, amp, channels_last)


def _evaluate(model: nn.Module, data: SegmentationTensors, device: torch.device, batch_size: int,
              loss_fn: nn.Module | None, amp: bool, channels_last: bool) -> Evaluation:
    """``evaluate`` under the chosen thread count."""
    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(data.num_classes, device=device)
    loss_sum, batches = 0.0, 0
    for images, masks in TensorLoader(data, batch_size, device=device):
        with _autocast(device, amp):
            logits = model(_prepare_inputs(images, device, channels_last))
        if logits.shape[-2:] != masks.shape[-2:] or logits.shape[1] != data.num_classes:
            raise ValueError(f"the model returned {tuple(logits.shape)}; expected (N, {data.num_classes}, "
                             f"{masks.shape[-2]}, {masks.shape[-1]}) logits")
        if loss_fn is not None:
            loss_sum += float(loss_fn(logits.float(), masks))
            batches += 1
        cm.update(logits.argmax(1), masks)
    model.train(was_training)
    return Evaluation(
        loss=loss_sum / batches if batches else float("nan"),
        miou=mean_iou(cm.matrix),
        pixel_accuracy=pixel_accuracy(cm.matrix),
        iou_per_class=iou_per_class(cm.matrix).tolist(),
        confusion=cm.matrix.cpu(),
    )


def lr_factor(progress: float, schedule: str, warmup_fraction: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` ∈ [0, 1] of the run."""
    p = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "poly":
        return (1 - p) ** 0.9
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * p))
    if p < warmup_fraction:  # onecycle
        return 0.05 + 0.95 * p / warmup_fraction
    return 0.5 * (1 + math.cos(math.pi * (p - warmup_fraction) / (1 - warmup_fraction)))


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on biases and normalisation parameters (1-D tensors)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def train_one_epoch(model: nn.Module, train_loader: TensorLoader, loss_fn: nn.Module,
                    optimizer: torch.optim.Optimizer, device: torch.device, cfg: TrainConfig,
                    step_offset: int = 0, total_steps: int | None = None, show_progress: bool | Progress = False,
                    epoch: int = 0) -> tuple[float, int]:
    """One pass over ``train_loader``.

    Args:
        step_offset: optimisation steps taken before this epoch.
        total_steps: steps of the whole run; the learning rate before each step is
            ``cfg.lr * lr_factor(step / total_steps)`` (default: this epoch is the whole run).
        show_progress: a ``Progress`` line to draw the epoch's steps on (``fit`` keeps one for the whole run), or
            True for a line of this epoch's own.
    Returns:
        (mean training loss, steps taken).
    """
    model.train()
    total_steps = total_steps or len(train_loader)
    loss_sum, steps = 0.0, 0
    progress = show_progress if isinstance(show_progress, Progress) else Progress(bool(show_progress))
    of = f"/{cfg.num_epochs}" if epoch else ""
    for images, masks in progress.track(train_loader, len(train_loader), f"epoch {epoch}{of}"):
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor((step_offset + steps) / total_steps, cfg.schedule, cfg.warmup_fraction)
        with _autocast(device, cfg.amp):
            logits = model(_prepare_inputs(images, device, cfg.channels_last))
        loss = loss_fn(logits.float(), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        loss_sum += float(loss.detach())
        steps += 1
    return (loss_sum / steps if steps else float("nan")), steps


def too_slow_message(seconds_per_epoch: float, cfg: TrainConfig) -> str:
    """What ``TrainingTooSlow`` says: the measured and the expected cost, and what to do."""
    expected = (f"; the recipe expects about {cfg.expected_epoch_seconds:.0f} s per epoch on a 2-core machine"
                if cfg.expected_epoch_seconds else "")
    return (f"stopped: this machine needed {seconds_per_epoch:.0f} s per epoch{expected}, so {cfg.num_epochs} epochs "
            f"would take about {seconds_per_epoch * cfg.num_epochs / 60:.0f} min, over the safety cap of "
            f"{cfg.max_seconds / 60:.0f} min (TrainConfig.max_seconds). The result would be the same on a faster "
            "machine, only later: close other programs, use a machine with more cores or a GPU, or raise "
            "max_seconds with dataclasses.replace(cfg, max_seconds=None).")


@torch.no_grad()
def check_output_shape(model: nn.Module, data: SegmentationTensors, device: torch.device) -> None:
    """Runs two images through the model and says plainly what is wrong when the logits have the wrong shape."""
    was_training = model.training
    model.eval()
    images, masks = next(iter(TensorLoader(data.subset(2), 2, device=device)))
    logits = model(images)
    model.train(was_training)
    expected = (images.shape[0], data.num_classes, *masks.shape[-2:])
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model maps {tuple(images.shape)} images to {got}; it must return logits of shape "
                         f"{expected} = (N, num_classes, H, W). Check the number of output channels of the classifier "
                         "and that the upsampling path returns to the input size.")


def fit(model: nn.Module, train_data: SegmentationTensors, val_data: SegmentationTensors, cfg: TrainConfig,
        log=print) -> History:
    """Trains ``model`` on ``train_data`` for ``cfg.num_epochs`` epochs and evaluates on ``val_data``.

    Args:
        model: (N, 3, H, W) → (N, K, H, W) logits, K = ``train_data.num_classes``; moved to the chosen device.
        log: called with one line per evaluated epoch (``None`` to stay silent); it prints to stdout.
    Returns:
        ``History``; the model is left trained, in eval mode, on the device.
    Raises:
        TrainingTooSlow: after an epoch, when the projected time of the run exceeds ``cfg.max_seconds``.
    """
    device = select_device(cfg.device)
    with cpu_threads(cfg.num_threads if device.type == "cpu" else None):
        return _fit(model, train_data, val_data, cfg, device, log)


def _fit(model: nn.Module, train_data: SegmentationTensors, val_data: SegmentationTensors, cfg: TrainConfig,
         device: torch.device, log) -> History:
    """``fit`` under the recipe's CPU thread count."""
    seed_everything(cfg.seed)
    model.to(device)
    if _uses_channels_last(device, cfg.channels_last):
        model.to(memory_format=torch.channels_last)
    check_output_shape(model, train_data, device)
    step_model = torch.compile(model) if cfg.compile else model
    augment = Augment(scale=cfg.scale_range) if cfg.augment else None
    train_loader = TensorLoader(train_data, cfg.batch_size, shuffle=True, augment=augment, device=device,
                                drop_last=len(train_data) >= cfg.batch_size, seed=cfg.seed)
    loss_fn = build_loss(cfg.loss, ignore_index=train_data.ignore_index).to(device)
    optimizer = build_optimizer(model, cfg)
    total_steps = cfg.num_epochs * len(train_loader)
    progress = Progress(progress_enabled(cfg.progress))  # one line of text for the whole run
    bf16 = uses_bf16(device, cfg.amp)
    history = History()
    start = time.perf_counter()
    steps_done = 0
    with deterministic_algorithms(cfg.deterministic and device.type == "cpu"):
        for epoch in range(1, cfg.num_epochs + 1):
            train_loss, steps = train_one_epoch(step_model, train_loader, loss_fn, optimizer, device, cfg,
                                                steps_done, total_steps, progress, epoch)
            steps_done += steps
            last = epoch == cfg.num_epochs
            if last or epoch % cfg.eval_every == 0:
                # the curves in bf16 where the run trains in it; the last epoch in float32, as the figure reported
                # after training (``evaluate``'s default) and recomputed by the grader, so the two agree
                result = evaluate(step_model, val_data, device, loss_fn=loss_fn, amp=cfg.amp and not last,
                                  channels_last=cfg.channels_last)
                record = EpochRecord(epoch, train_loss, result.loss, result.miou, result.pixel_accuracy,
                                     optimizer.param_groups[0]["lr"], time.perf_counter() - start)
                history.records.append(record)
                if log is not None:
                    digits, note = (4, "  (float32)" if bf16 else "") if last else (3, "")
                    log(f"epoch {epoch:3d}  train loss {train_loss:.3f}  val loss {result.loss:.3f}  "
                        f"val mIoU {result.miou:.{digits}f}  pixel acc {result.pixel_accuracy:.{digits}f}  "
                        f"{record.seconds:6.1f}s{note}")
            per_epoch = (time.perf_counter() - start) / epoch
            if not last and cfg.max_seconds is not None and per_epoch * cfg.num_epochs > cfg.max_seconds:
                model.eval()
                raise TrainingTooSlow(too_slow_message(per_epoch, cfg))
    history.total_seconds = time.perf_counter() - start
    took = history.total_seconds
    progress.close(f"trained {cfg.num_epochs} epoch{'s' if cfg.num_epochs > 1 else ''} ({steps_done:,} steps of "
                   f"{cfg.batch_size} images) in " + (f"{took:.0f} s" if took < 90 else f"{took / 60:.1f} min"))
    model.eval()
    return history
