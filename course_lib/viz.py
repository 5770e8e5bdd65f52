"""Plots: training curves, prediction grids, per-class IoU bars, confusion heat maps.

Each function returns a matplotlib ``Figure`` (shown inline in a notebook) and saves a PNG when
``save_path`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_lib.term import Tiers, tiers as term_tiers

VOID_COLOUR = (224, 224, 192)


def _finish(fig, save_path: str | Path | None):
    fig.tight_layout()
    if save_path is not None:
        Path(save_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save_path, dpi=120)
    return fig


def colorize(mask: torch.Tensor | np.ndarray, palette: Sequence[tuple[int, int, int]], ignore_index: int = 255) -> np.ndarray:
    """(H, W) class ids → (H, W, 3) uint8 RGB; ``ignore_index`` gets the VOC void colour."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette[:256], dtype=np.uint8)
    lut[ignore_index] = VOID_COLOUR
    return lut[np.asarray(mask, dtype=np.int64).clip(0, 255)]


def plot_history(histories, save_path: str | Path | None = None, tiers: Tiers | None = None):
    """Loss (train and validation) and validation mIoU per epoch, with the term's tiers as dotted lines.

    Args:
        histories: a ``History``, or a dict ``{label: History}`` to compare runs side by side.
        tiers: the lines to draw (default: the term's, ``course_lib.term.tiers()``).
    """
    tiers = tiers or term_tiers()
    if not isinstance(histories, dict):
        histories = {"": histories}
    fig, (ax_loss, ax_miou) = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, history in histories.items():
        epochs = history.column("epoch")
        prefix = f"{label} " if label else ""
        ax_loss.plot(epochs, history.column("train_loss"), "-o", ms=3, label=f"{prefix}train")
        ax_loss.plot(epochs, history.column("val_loss"), "--o", ms=3, label=f"{prefix}val")
        ax_miou.plot(epochs, history.column("val_miou"), "-o", ms=3, label=label or "val mIoU")
    for tier in tiers.as_dict().values():
        ax_miou.axhline(tier, color="grey", lw=0.6, ls=":")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_miou.set(xlabel="epoch", ylabel="mIoU", title="Validation mIoU (tiers " + " / ".join(f"{t:g}" for t in tiers.as_dict().values()) + ")", ylim=(0, 1))
    ax_loss.legend(fontsize=8)
    ax_miou.legend(fontsize=8)
    return _finish(fig, save_path)


def plot_predictions(images: torch.Tensor, masks: torch.Tensor, preds: torch.Tensor,
                     palette: Sequence[tuple[int, int, int]], max_images: int = 6, ignore_index: int = 255,
                     save_path: str | Path | None = None):
    """A grid with one row per sample: image | ground truth | prediction.

    Args:
        images: (N, 3, H, W) uint8 RGB.
        masks, preds: (N, H, W) integer labels.
    """
    columns = (("image", images), ("ground truth", masks), ("prediction", preds))
    return _sample_grid(columns, palette, max_images, ignore_index, save_path)


def plot_samples(images: torch.Tensor, masks: torch.Tensor, palette: Sequence[tuple[int, int, int]],
                 max_images: int = 6, ignore_index: int = 255, save_path: str | Path | None = None):
    """A grid with one row per sample of a data set: image | ground truth (no model involved).

    Args:
        images: (N, 3, H, W) uint8 RGB.
        masks: (N, H, W) integer labels.
    """
    return _sample_grid((("image", images), ("ground truth", masks)), palette, max_images, ignore_index, save_path)


def _sample_grid(columns, palette, max_images: int, ignore_index: int, save_path):
    """One row per sample, one titled column per ``(title, tensor)``: the first an RGB image, the others labels."""
    n = min(max_images, columns[0][1].shape[0])
    fig, axes = plt.subplots(n, len(columns), figsize=(2.2 * len(columns), 2.2 * n), squeeze=False)
    for i in range(n):
        for j, (ax, (title, tensor)) in enumerate(zip(axes[i], columns)):
            panel = (tensor[i].permute(1, 2, 0).cpu().numpy() if j == 0
                     else colorize(tensor[i].cpu(), palette, ignore_index))
            ax.imshow(panel, interpolation="nearest")
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title)
    return _finish(fig, save_path)


def plot_class_iou(iou_per_class: Sequence[float], class_names: Sequence[str], save_path: str | Path | None = None):
    """Horizontal bars of IoU per class; classes that never appeared (NaN) are marked n/a."""
    iou = np.asarray(iou_per_class, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(class_names) + 1))
    y = np.arange(len(class_names))
    ax.barh(y, np.nan_to_num(iou), color="tab:blue")
    for yi, value in zip(y, iou):
        ax.text(min(np.nan_to_num(value), 0.92) + 0.01, yi, "n/a" if np.isnan(value) else f"{value:.2f}", va="center", fontsize=7)
    ax.set_yticks(y, class_names, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="IoU", title=f"IoU per class (mean {np.nanmean(iou):.3f})")
    return _finish(fig, save_path)


def plot_confusion(confusion: torch.Tensor, class_names: Sequence[str], normalize: bool = True,
                   save_path: str | Path | None = None):
    """Heat map of ``confusion[true, predicted]``, rows normalised to recall when ``normalize``."""
    cm = confusion.double().cpu().numpy()
    if normalize:
        cm = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(cm, cmap="viridis", vmin=0, vmax=1 if normalize else None)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90, fontsize=6)
    ax.set_yticks(ticks, class_names, fontsize=6)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix" + (" (row-normalised)" if normalize else ""))
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _finish(fig, save_path)
