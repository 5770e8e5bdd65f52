"""Reference architectures: output shapes, documented parameter counts, the name registry, upsamplers."""

import importlib
import re

import pytest
import torch

from course_lib.models import MODELS, UPSAMPLERS, build_model, count_parameters, make_upsampler

CASES = [("pixelwise", {}), ("fcn", {}), ("unet", {}), ("unet", {"base_width": 16, "depth": 3}),
         ("unet", {"base_width": 8, "up_mode": "bilinear"}), ("unet", {"base_width": 8, "up_mode": "pixelshuffle"}),
         ("deeplabv3", {}), ("deeplabv3", {"output_stride": 16, "width_mult": 0.5}), ("segformer", {})]


@pytest.mark.parametrize("name,kwargs", CASES)
@pytest.mark.parametrize("size", [64, 96])
def test_output_shape(name, kwargs, size):
    model = build_model(name, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 21, size, size) and out.dtype == torch.float32


def test_num_classes_and_non_square_input():
    model = build_model("deeplabv3", num_classes=11).eval()
    assert model(torch.randn(1, 3, 96, 128)).shape == (1, 11, 96, 128)


@pytest.mark.parametrize("module_name", ["baseline", "unet", "deeplab", "segformer"])
def test_docstring_parameter_counts_are_true(module_name):
    module = importlib.import_module(f"course_lib.models.{module_name}")
    text = module.__doc__.split("Parameters at 21 classes:")[1]
    claims = re.findall(r"``(\w+)\(([^`]*)\)``(?: \([^)]*\))? ([\d,]{4,})", text)
    assert claims, f"{module_name} documents no parameter count"
    for cls_name, args, count in claims:
        kwargs = eval(f"dict({args})") if args else {}
        assert count_parameters(getattr(module, cls_name)(**kwargs)) == int(count.replace(",", "")), cls_name


def test_build_model_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="valid names: \\['deeplabv3', 'fcn'"):
        build_model("resnet")
    assert set(MODELS) == {"pixelwise", "fcn", "unet", "deeplabv3", "segformer"}


@pytest.mark.parametrize("mode,expected", [("transposed", 4 * 8 * 4 + 4), ("bilinear", 9 * 8 * 4 + 4),
                                           ("pixelshuffle", 36 * 8 * 4 + 16)])
def test_upsampler_shapes_and_parameter_formulas(mode, expected):
    block = make_upsampler(mode, 8, 4)
    assert block(torch.randn(1, 8, 5, 7)).shape == (1, 4, 10, 14)
    assert count_parameters(block) == expected
    assert mode in UPSAMPLERS


def test_unet_rejects_indivisible_input():
    with pytest.raises(ValueError, match="divisible by 16"):
        build_model("unet", base_width=4)(torch.randn(1, 3, 40, 40))


def test_pixelwise_classifier_has_receptive_field_one():
    model = build_model("pixelwise").eval()
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    model(x)[0, :, 4, 4].sum().backward()
    touched = (x.grad.abs().sum(1)[0] > 0).nonzero().tolist()
    assert touched == [[4, 4]]
