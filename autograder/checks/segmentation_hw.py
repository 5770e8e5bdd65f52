"""Hidden checks of Assignment 1 (the segmentation homework), one per autograded cell.

Verdicts run in the grader's process and never execute student code: they read the probes' observations
(``segmentation_hw_probes.py``, run in the sandbox), the predictions' confusion matrix computed here, and the
submitted notebook's Markdown.
"""

from __future__ import annotations

from pathlib import Path

import torch

from autograder.assignment import Assignment, CheckContext
from autograder.checks.common import CheckFailed, Part, PartialCredit, check_answers_complete, score_parts
from autograder.checks.segmentation_hw_probes import MODEL_CONFIGS, block_parts, block_seed, set_block_weights
from course_lib.answers import miou_disagreement
from course_lib.term import Tiers

CHECKPOINT = "segmentation_hw_checkpoint.pt"
RESULTS = "segmentation_hw_results.json"  # named in a check's message
MAX_PARAMETERS = 5_000_000
# grade id -> the homework's default threshold; a term's own come from course.toml through the judge (ctx.tiers)
TIERS = {f"test_miou_{name}": threshold for name, threshold in Tiers().as_dict().items()}


def _probe(obs: dict, name: str, cell: str | None = None) -> dict:
    """The observations of one probe; its error, with the error of the student's cell when that was the cause."""
    data = obs.get(name)
    if data is None:
        raise CheckFailed(obs.get("sandbox_error", "your code could not be run"))
    if "error" in data:
        cell_error = obs.get("cell_errors", {}).get(cell) if cell else None
        raise CheckFailed(data["error"] + (f"; the cell {cell} raised {cell_error}" if cell_error else ""))
    return data


def check_residual_block(obs: dict, ctx: CheckContext) -> str | PartialCredit:
    """Five parts, 10 points: shapes and final ReLU, shortcut kind, identity path, gradient, the specification."""
    data = _probe(obs, "residual_block", "residual_block")
    return score_parts([
        Part("shapes", 3, lambda: _block_shapes(data)),
        Part("shortcut", 2, lambda: _block_shortcut(data)),
        Part("identity path", 2, lambda: _block_identity(data)),
        Part("gradient", 1, lambda: _gradient_reaches(data["conv1_grad_norm"], "conv1")),
        Part("specification", 2, lambda: _block_specification(data)),
    ])


def _block_shapes(data: dict) -> str:
    for key, (shape, dtype, finite, non_negative) in data["shapes"].items():
        n, cin, cout, stride = (int(v) for v in key.split("-"))
        expected = [n, cout, 16 // stride, 16 // stride]
        if shape != expected:
            raise CheckFailed(f"ResidualBlock({cin}, {cout}, stride={stride}) on a ({n}, {cin}, 16, 16) input "
                              f"gave {tuple(shape)}, expected {tuple(expected)}")
        if dtype != "torch.float32" or not finite:
            raise CheckFailed(f"ResidualBlock output must be finite float32, got {dtype} (finite={finite})")
        if not non_negative:
            raise CheckFailed("the block's output must pass through a final ReLU (negative values found)")
    return "right output shapes for every stride and width, after a final ReLU"


def _block_shortcut(data: dict) -> str:
    for key, identity in data["shortcut_identity"].items():
        cin, cout, stride = (int(v) for v in key.split("-"))
        if identity != (cin == cout and stride == 1):
            need = "the identity" if cin == cout and stride == 1 else "a projection"
            raise CheckFailed(f"ResidualBlock({cin}, {cout}, stride={stride}): the shortcut should be {need}")
    return "identity when the shape is kept, a projection otherwise"


def _block_identity(data: dict) -> str:
    x, y = data["identity_input"], data["identity_output"]
    if y.shape != x.shape or not torch.allclose(y, x, atol=1e-5):
        raise CheckFailed("with bn2 zeroed the block is not the identity on a non-negative input: "
                          "is the skip connection added before the final ReLU?")
    return "with bn2 zeroed the block passes its input through"


def _gradient_reaches(grad_norm: float, where: str) -> str:
    """A backward pass from the output left a gradient (``grad_norm``: sum of its absolute values) at ``where``."""
    if not grad_norm > 0:
        raise CheckFailed(f"no gradient reaches {where}")
    return f"the gradient reaches {where}"


def _block_specification(data: dict) -> str:
    for key, observed in data["structure"].items():
        _check_block_against_specification(*(int(v) for v in key.split("-")), observed)
    return "the docstring's parameter count and, with the same weights, the same output"


def _specification_block(cin: int, cout: int, stride: int, x: torch.Tensor) -> tuple[int, dict, torch.Tensor]:
    """The reference block's parameter count, parts and eval-mode output on ``x``, with the probe's weights."""
    from autograder.reference.segmentation_hw import ResidualBlock

    block = ResidualBlock(cin, cout, stride)
    parts = block_parts(block)
    set_block_weights(block, seed=block_seed(cin, cout, stride))
    with torch.no_grad():
        return sum(p.numel() for p in block.parameters()), parts, block.eval()(x)


def _check_block_against_specification(cin: int, cout: int, stride: int, observed: dict) -> None:
    """The docstring fixes every layer, so a block built to it has the specification's parameter count and, with
    the same weights, computes the same function. The parts are compared only to say what to fix."""
    count, parts, expected = _specification_block(cin, cout, stride, observed["input"])
    call = f"ResidualBlock({cin}, {cout}, stride={stride})"
    differ = [f"{name}: yours {observed['parts'].get(name)}, specified {want}" for name, want in parts.items()
              if observed["parts"].get(name) != want]
    hint = ("; parts that differ from the docstring: " + "; ".join(differ)) if differ else ""
    if observed["num_parameters"] != count:
        raise CheckFailed(f"{call} has {observed['num_parameters']:,} parameters; the docstring's block has {count:,}"
                          f"{hint or ' (check the bias=False convolutions and the BatchNorms)'}")
    y = observed["output"]
    if y is None or y.shape != expected.shape or not torch.allclose(y, expected, rtol=1e-4, atol=1e-4):
        gap = float((y - expected).abs().max()) if y is not None and y.shape == expected.shape else float("nan")
        raise CheckFailed(f"with the same weights as the docstring's block, {call} (eval mode) computes a different "
                          f"function (largest difference {gap:.3g}){hint}: check the order conv1 (stride here) "
                          "→ bn1 → ReLU → conv2 → bn2, then add the shortcut, then the final ReLU")


def check_segmentation_model(obs: dict, ctx: CheckContext) -> str | PartialCredit:
    """Five parts, 10 points: shapes, resolution of both variants, gradient, the docstring's layout, and what the
    skip connections carry."""
    data = _probe(obs, "segmentation_model", "segmentation_model")
    return score_parts([
        Part("shapes", 3, lambda: _model_shapes(data)),
        Part("resolution", 2, lambda: _model_resolution(data)),
        Part("gradient", 1, lambda: _gradient_reaches(data["first_grad"], "the first convolution")),
        Part("layout", 2, lambda: _model_layout(data)),
        Part("skips", 2, lambda: _model_skips(data["skips"])),
    ])


def _model_shapes(data: dict) -> str:
    for key, (shape, dtype, finite) in data["shapes"].items():
        downsample, n = key.split("-")
        if shape != [int(n), 21, 64, 64]:
            raise CheckFailed(f"SegmentationModel(downsample={downsample}) on ({n}, 3, 64, 64) gave {tuple(shape)}, "
                              f"expected ({n}, 21, 64, 64)")
        if dtype != "torch.float32" or not finite:
            raise CheckFailed(f"logits must be finite float32, got {dtype} (finite={finite})")
    return "(N, 21, 64, 64) finite float32 logits with and without downsampling"


def _model_resolution(data: dict) -> str:
    if data["min_size"]["True"] > 8:
        raise CheckFailed(f"downsample=True never goes below {data['min_size']['True']}x{data['min_size']['True']} "
                          "(expected stages down to 1/8, 8x8)")
    if data["min_size"]["False"] != 64:
        raise CheckFailed("downsample=False must keep full resolution in every convolution")
    return "down to 1/8 with downsampling, full resolution without"


def _model_layout(data: dict) -> str:
    from autograder.reference.segmentation_hw import SegmentationModel

    for kwargs in MODEL_CONFIGS:
        specified = sum(p.numel() for p in SegmentationModel(**kwargs).parameters())
        yours = data["num_parameters"].get(repr(sorted(kwargs.items())))
        if yours != specified:
            args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
            raise CheckFailed(f"SegmentationModel({args}) has {yours:,} parameters; the docstring's layout has "
                              f"{specified:,}. Check the stage widths, the two fuse blocks (6·width → 2·width at 1/4, "
                              "3·width → width at 1/2), the concatenation with the stem at full size and the 1×1 "
                              "classifier (2·width → num_classes with downsampling, width → num_classes without)")
    return "the docstring's layout (parameter counts at four configurations)"


def _holds(container: torch.Tensor, part: torch.Tensor) -> bool:
    """Whether ``part`` (1, c, H, W) is a run of consecutive channels of ``container`` (1, C, H, W): a concatenation
    along the channels in either order."""
    if container.shape[0] != part.shape[0] or container.shape[-2:] != part.shape[-2:]:
        return False
    c = part.shape[1]
    return any(torch.allclose(container[:, i:i + c], part, rtol=1e-4, atol=1e-5)
               for i in range(container.shape[1] - c + 1))


def _model_skips(trace: dict) -> str:
    """The docstring's skips, by what they carry (no attribute names): each fuse block's input holds the encoder's
    output at that size, and the classifier's input holds the stem's features (ReLU of the first BatchNorm)."""
    if trace.get("stem_bn") is None or trace.get("head_input") is None:
        raise CheckFailed("no BatchNorm or convolution ran: the stem is conv 3×3 → BatchNorm → ReLU")
    if not torch.equal(trace["head_output"], trace["logits"]):
        raise CheckFailed("the logits must be the output of the last convolution, the 1×1 classifier")
    calls = trace["blocks"]
    first_up = next((i for i in range(1, len(calls)) if calls[i][0].shape[-1] > calls[i - 1][1].shape[-1]), None)
    if first_up is None:
        raise CheckFailed("no residual block runs on upsampled features: the two fuse blocks are missing")
    encoder = {}
    for _, output in calls[:first_up]:
        encoder[output.shape[-1]] = output  # the last encoder output at each size
    for block_input, _ in calls[first_up:]:
        size = block_input.shape[-1]
        if size not in encoder or not _holds(block_input, encoder[size]):
            raise CheckFailed(f"the fuse block at {size}×{size} (input 32×32) does not receive the encoder's features "
                              f"of that size: concatenate the upsampled features with the stage output of the same size")
    stem = torch.relu(trace["stem_bn"])
    if not _holds(trace["head_input"], stem):
        raise CheckFailed("the classifier's input does not contain the stem's features (conv → BatchNorm → ReLU at "
                          "full size): concatenate them with the upsampled decoder output before the 1×1 classifier")
    return "each fuse block gets the encoder's features of its size, the classifier gets the stem's"


def check_parameter_count(obs: dict, ctx: CheckContext) -> str:
    data = _probe(obs, "parameters", "segmentation_model")
    real = int(data["num_parameters"])
    reported = ctx.reported.get("num_parameters")
    saved = ctx.results_metrics.get("num_parameters")
    if reported is None:
        raise CheckFailed("the results table (Q1) reports no parameter count")
    if int(reported) != real:
        raise CheckFailed(f"the table reports {int(reported):,} parameters; the submitted model has {real:,}")
    if saved is not None and int(saved) != real:
        raise CheckFailed(f"{RESULTS} says {int(saved):,} parameters; the submitted model has {real:,}")
    if real > MAX_PARAMETERS:
        raise CheckFailed(f"{real:,} parameters exceeds the limit of {MAX_PARAMETERS:,}")
    return f"{real:,} parameters, as reported, within the limit"


def _recomputed(ctx: CheckContext) -> dict:
    miou = ctx.miou
    if miou is None:
        raise CheckFailed((ctx.miou_error or "the checkpoint could not be evaluated") + _mismatch(ctx))
    return miou


def _mismatch(ctx: CheckContext) -> str:
    """The judge's note when the submission was made for another data set, size or mode than the term's."""
    return f" ({ctx.setting_mismatch})" if ctx.setting_mismatch else ""


def check_results_table(obs: dict, ctx: CheckContext) -> str:
    """The Q1 table's mIoU stands for the submitted checkpoint (its own check: the tiers never depend on it)."""
    miou = _recomputed(ctx)
    problem = miou_disagreement(ctx.reported.get("miou"), miou["public"])
    if problem:
        raise CheckFailed(problem + _mismatch(ctx))
    return f"the table's mIoU {ctx.reported['miou']:.4f} agrees with the checkpoint's {miou['public']:.4f}"


def _tier(grade_id: str):
    name = grade_id.removeprefix("test_miou_")

    def check(obs: dict, ctx: CheckContext) -> str:
        """The tier is judged on the mIoU recomputed from the checkpoint alone (the held-out figure when the
        checkpoint does far worse on the held-out data than on the public validation split), against the term's
        declared threshold (``ctx.tiers``, from ``GradedSetting.tiers``)."""
        threshold = getattr(ctx.tiers or Tiers(), name)
        miou = _recomputed(ctx)
        score = miou["effective"]
        note = "" if score == miou["public"] else (f" ({miou['heldout_kind']}: {miou['heldout']:.4f}, far below the "
                                                   f"validation split's {miou['public']:.4f}; the held-out figure counts)")
        if score < threshold:
            raise CheckFailed(f"recomputed mIoU {score:.4f} is below {threshold}{note}{_mismatch(ctx)}")
        return f"recomputed mIoU {score:.4f} >= {threshold}{note}"

    check.__name__ = grade_id
    return check


CHECKS = {
    "test_residual_block": check_residual_block,
    "test_segmentation_model": check_segmentation_model,
    "test_results_table": check_results_table,
    **{gid: _tier(gid) for gid in TIERS},
    "test_parameter_count": check_parameter_count,
    "test_answers_complete": check_answers_complete,
}

ASSIGNMENT = Assignment(
    name="segmentation_hw",
    notebook="segmentation_hw.ipynb",
    code_cells=("residual_block", "segmentation_model"),
    checks=CHECKS,
    points={"test_residual_block": 10, "test_segmentation_model": 10, "test_results_table": 3,
            **{gid: 5 for gid in TIERS}, "test_parameter_count": 5, "test_answers_complete": 2},
    probes_file=Path(__file__).with_name("segmentation_hw_probes.py"),
    checkpoint=CHECKPOINT,
    results_file=RESULTS,
    results_table_cell="q1_results_table",
    reference_artifacts=(CHECKPOINT, "segmentation_hw_nodown_checkpoint.pt"),
)
