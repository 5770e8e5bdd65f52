"""The skip-connection experiment of the concepts notebook (topic 2), shared with ``bench/skip_experiment.py``.

Two small U-Nets (``course_lib.models.UNet``), identical but for the skip connections, learn to separate objects
from background in 32x32 synthetic images. This module trains them and returns their predictions; scoring is left
to the caller (the student's own boundary F1 in the notebook, the grader's in the benchmark). On a CPU a run is
reproducible: one thread and a seeded generator (the seed sets the initial weights and the order of the batches).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_lib.data import load_synthetic
from course_lib.models import UNet


def foreground_task(split: str, num_images: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic images and binary labels: 1 = any object, 0 = background, 255 = void (the band on boundaries).

    Returns:
        images: (N, 3, size, size) float in [0, 1]; labels: (N, size, size) int64.
    """
    data = load_synthetic(split, size=size, num_images=num_images)
    labels = data.masks.long()
    return data.images.float() / 255, torch.where(labels == 255, 255, (labels > 0).long())


def train_skip_unet(images: torch.Tensor, labels: torch.Tensor, skips: bool, seed: int, steps: int = 100,
                    batch_size: int = 16, lr: float = 3e-3) -> UNet:
    """A U-Net (base width 4, depth 3) trained with Adam for ``steps`` batches; void pixels are left out of the loss.

    Runs on one CPU thread (the caller's thread count is restored), so the same seed gives the same network.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        net = UNet(in_channels=3, num_classes=2, base_width=4, depth=3, skips=skips)
        optimiser = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(steps):
            batch = torch.randint(0, len(images), (batch_size,))
            loss = F.cross_entropy(net(images[batch]), labels[batch], ignore_index=255)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


@torch.no_grad()
def predict(net: UNet, images: torch.Tensor) -> torch.Tensor:
    """(N, H, W) int64: the class of the highest logit (1 = object)."""
    return net(images).argmax(1)
