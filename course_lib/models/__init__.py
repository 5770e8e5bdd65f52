"""Reference architectures, looked up by name through ``MODELS``.

The homework's own ``ResidualBlock`` / ``SegmentationModel`` are what students write; their reference
solution lives with the grader, not here.
"""

from __future__ import annotations

from torch import nn

from course_lib.models.baseline import FCN, PixelwiseClassifier
from course_lib.models.blocks import UPSAMPLERS, BilinearConvUp, PixelShuffleUp, TransposedConvUp, make_upsampler
from course_lib.models.deeplab import ASPP, DeepLabV3
from course_lib.models.segformer import EfficientSelfAttention, MixFFN, SegFormer
from course_lib.models.unet import UNet
from course_lib.registry import build

MODELS: dict[str, type[nn.Module]] = {
    "pixelwise": PixelwiseClassifier,
    "fcn": FCN,
    "unet": UNet,
    "deeplabv3": DeepLabV3,
    "segformer": SegFormer,
}


def build_model(name: str, **kwargs) -> nn.Module:
    """Instantiates ``MODELS[name](**kwargs)``; an unknown name lists the valid ones."""
    return build(MODELS, name, "model", **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "MODELS", "build_model", "count_parameters", "PixelwiseClassifier", "FCN", "UNet", "DeepLabV3", "ASPP",
    "SegFormer", "EfficientSelfAttention", "MixFFN", "TransposedConvUp", "BilinearConvUp", "PixelShuffleUp",
    "UPSAMPLERS", "make_upsampler",
]
