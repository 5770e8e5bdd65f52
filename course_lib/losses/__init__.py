"""Losses: pure functions in ``functional``, modules in ``modules``.

``LOSSES`` maps the names accepted by ``TrainConfig.loss`` to loss modules.
"""

from __future__ import annotations

from torch import nn

from course_lib.losses.functional import (
    ce_dice_loss, cross_entropy, dice_loss, focal_loss, ohem_cross_entropy, tversky_loss,
)
from course_lib.losses.modules import (
    CEDiceLoss, CrossEntropyLoss, DiceLoss, FocalLoss, OhemCrossEntropyLoss, TverskyLoss,
)
from course_lib.registry import build

LOSSES: dict[str, type[nn.Module]] = {
    "ce": CrossEntropyLoss,
    "dice": DiceLoss,
    "ce+dice": CEDiceLoss,
    "focal": FocalLoss,
    "tversky": TverskyLoss,
    "ohem": OhemCrossEntropyLoss,
}


def build_loss(name: str, **kwargs) -> nn.Module:
    """Instantiates ``LOSSES[name](**kwargs)``; an unknown name lists the valid ones."""
    return build(LOSSES, name, "loss", **kwargs)


__all__ = [
    "LOSSES", "build_loss", "cross_entropy", "dice_loss", "ce_dice_loss", "focal_loss",
    "tversky_loss", "ohem_cross_entropy", "CrossEntropyLoss", "DiceLoss",
    "CEDiceLoss", "FocalLoss", "TverskyLoss", "OhemCrossEntropyLoss",
]
