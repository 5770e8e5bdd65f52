"""Hidden checks of Assignment 1 (the segmentation homework), one per autograded cell.

Verdicts run in the grader's process and never execute student code: they read the probes' observations
(``segmentation_hw_probes.py``, run in the sandbox), the predictions' confusion matrix computed here, and the
submitted notebook's Markdown.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path

import torch

from autograder.assignment import Assignment, CheckContext
from autograder.checks.common import (
    BATCHNORM_STATISTICS, CheckFailed, Part, PartialCredit, check_answers_complete, forged, score_parts,
    unimplemented_classes,
)
from autograder.checks.segmentation_hw_probes import BLOCK_CONFIGS, MODEL_CONFIGS, block_parts, set_block_weights
from course_lib.answers import miou_disagreement
from course_lib.term import Tiers

CHECKPOINT = "segmentation_hw_checkpoint.pt"
RESULTS = "segmentation_hw_results.json"  # named in a check's message
MAX_PARAMETERS = 5_000_000
# grade id -> the homework's default threshold; a term's own come from course.toml through the judge (ctx.tiers)
TIERS = {f"test_miou_{name}": threshold for name, threshold in Tiers().as_dict().items()}
CODE_CELLS = ("residual_block", "segmentation_model")


def make_challenge() -> dict:
    """What the probes answer, drawn afresh for every run (so no observation can be prepared in advance): for each
    block configuration a weight seed and an input of a random batch and size; the identity path's and the
    gradient's inputs; the model's seed, input sizes and inputs."""
    g = torch.Generator().manual_seed(secrets.randbits(62))
    draw = lambda high: int(torch.randint(high, (1,), generator=g))
    seed = lambda: draw(2**31)
    side = lambda: 4 * (3 + draw(4))  # 12 to 24: even, so stride 2 halves it exactly
    blocks = [{"config": [cin, cout, stride], "seed": seed(),
               "input": torch.randn(1 + draw(3), cin, side(), side(), generator=g)} for cin, cout, stride in BLOCK_CONFIGS]
    h, w = side(), side()
    identity = {"seed": seed(), "input": torch.relu(torch.randn(2, 8, h, w, generator=g))}
    h, w = side(), side()
    gradient = {"seed": seed(), "input": torch.randn(2, 8, h, w, generator=g),
                "upstream": torch.randn(2, 16, h // 2, w // 2, generator=g)}
    model_side = lambda: 8 * (4 + draw(5))  # 32 to 64, divisible by 8
    logits = [{"downsample": downsample, "input": torch.randn(1 + draw(3), 3, model_side(), model_side(), generator=g)}
              for downsample in (True, False, True, False)]
    size = model_side()
    h, w = model_side(), model_side()
    model = {"seed": seed(), "logits": logits, "size_input": torch.randn(1, 3, size, size, generator=g),
             "gradient_input": torch.randn(2, 3, h, w, generator=g), "upstream": torch.randn(2, 21, h, w, generator=g),
             "trace_input": torch.randn(1, 3, 32, 32, generator=g)}
    return {"blocks": blocks, "identity": identity, "gradient": gradient, "model": model}


def _probe(obs: dict, name: str, cell: str | None = None) -> dict:
    """The observations of one probe; its error, with the error of the student's cell when that was the cause."""
    data = obs.get(name)
    if data is None:
        raise CheckFailed(obs.get("sandbox_error", "your code could not be run"))
    if "error" in data:
        cell_error = obs.get("cell_errors", {}).get(cell) if cell else None
        raise CheckFailed(data["error"] + (f"; the cell {cell} raised {cell_error}" if cell_error else ""))
    return data


def _authentic(obs: dict, ctx: CheckContext, probe: str, names: tuple[str, ...]) -> dict:
    """A probe's observations, provided the classes it ran can run at all: a class the grader reads as still the
    release's stub (``unimplemented_classes``, on the source, here) cannot have produced results, so results for it
    were forged; the check then earns nothing and the TA is told."""
    data = _probe(obs, probe, CODE_CELLS[0] if probe == "residual_block" else CODE_CELLS[1])
    stubs = unimplemented_classes(ctx.cells, names)
    if stubs:
        forged(ctx, f"the probes report results for {', '.join(stubs)}, which the submitted code leaves "
                    "unimplemented (still the release's stub, or not defined): the observations were forged")
    return data


def _tensor(value, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} raised {value.get('error') if isinstance(value, dict) else value}")
    return value


def check_residual_block(obs: dict, ctx: CheckContext) -> str | PartialCredit:
    """Five parts, 10 points: shapes and final ReLU, shortcut, identity path, gradient, the specification. Every
    part is decided on tensors the student's block computed for the grader's per-run challenge."""
    data = _authentic(obs, ctx, "residual_block", ("ResidualBlock",))
    challenge = ctx.inputs
    if len(data.get("cases", [])) != len(challenge["blocks"]):
        forged(ctx, "the residual block's observations do not answer the grader's challenge (wrong number of cases)")
    cases = list(zip(challenge["blocks"], data["cases"]))
    return score_parts([
        Part("shapes", 3, lambda: _block_shapes(cases)),
        Part("shortcut", 2, lambda: _block_shortcut(cases)),
        Part("identity path", 2, lambda: _block_identity(challenge["identity"], data["identity_output"])),
        Part("gradient", 1, lambda: _gradient_reaches(data["conv1_grad"], (16, 8, 3, 3), "conv1")),
        Part("specification", 2, lambda: _block_specification(cases)),
    ])


def _call(cin: int, cout: int, stride: int) -> str:
    return f"ResidualBlock({cin}, {cout}, stride={stride})"


def _block_shapes(cases: list) -> str:
    for case, observed in cases:
        cin, cout, stride = case["config"]
        n, _, h, w = case["input"].shape
        y = _tensor(observed["output"], _call(cin, cout, stride))
        expected = (n, cout, h // stride, w // stride)
        if tuple(y.shape) != expected:
            raise CheckFailed(f"{_call(cin, cout, stride)} on a {tuple(case['input'].shape)} input gave "
                              f"{tuple(y.shape)}, expected {expected}")
        if y.dtype != torch.float32 or not torch.isfinite(y).all():
            raise CheckFailed(f"ResidualBlock output must be finite float32, got {y.dtype}")
        if (y < 0).any():
            raise CheckFailed("the block's output must pass through a final ReLU (negative values found)")
    return "right output shapes for every stride and width, after a final ReLU"


def _reference_block(cin: int, cout: int, stride: int, seed: int):
    """The specification's block (the reference solution) with the probe's weights for ``seed``, in eval mode."""
    from autograder.reference.segmentation_hw import ResidualBlock

    block = ResidualBlock(cin, cout, stride)
    parts = block_parts(block)
    set_block_weights(block, seed=seed)
    return block.eval(), parts


def _block_shortcut(cases: list) -> str:
    """With bn2 silenced the main path adds nothing: what is left is the shortcut (after the final ReLU, or before
    it: the final ReLU is the shapes part's business)."""
    for case, observed in cases:
        cin, cout, stride = case["config"]
        x = case["input"]
        y = _tensor(observed["silenced"], f"{_call(cin, cout, stride)} with bn2 zeroed")
        if cin == cout and stride == 1:
            expected, need = x, "the identity (the shape is kept)"
        else:
            block, _ = _reference_block(cin, cout, stride, case["seed"])
            with torch.no_grad():
                expected = block.shortcut(x)
            need = f"a projection: a 1×1 convolution with stride {stride} (no bias), then BatchNorm"
        if y.shape != expected.shape or not (_close(y, torch.relu(expected)) or _close(y, expected)):
            raise CheckFailed(f"{_call(cin, cout, stride)}: with bn2 zeroed what is left is not the shortcut the "
                              f"docstring asks for; the shortcut should be {need}")
    return "identity when the shape is kept, a 1×1 projection with BatchNorm otherwise"


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-4))


def _block_identity(case: dict, y) -> str:
    x = case["input"]
    y = _tensor(y, "ResidualBlock(8, 8) with bn2 zeroed")
    if y.shape != x.shape or not torch.allclose(y, x, atol=1e-5):
        raise CheckFailed("with bn2 zeroed the block is not the identity on a non-negative input: "
                          "is the skip connection added before the final ReLU?")
    return "with bn2 zeroed the block passes its input through"


def _gradient_reaches(grad, shape: tuple | None, where: str) -> str:
    """A backward pass from the output left a gradient at ``where`` (the weight's gradient tensor, of ``shape``)."""
    if not isinstance(grad, torch.Tensor) or (shape is not None and tuple(grad.shape) != shape) \
            or not torch.isfinite(grad).all() or not grad.abs().sum() > 0:
        raise CheckFailed(f"no gradient reaches {where}")
    return f"the gradient reaches {where}"


def _block_specification(cases: list) -> str:
    for case, observed in cases:
        _check_block_against_specification(case, observed)
    return "the docstring's parameter count and, with the grader's weights, the same output"


def _count(shapes: dict) -> int:
    total = 0
    for shape in shapes.values():
        size = 1
        for dim in shape:
            size *= int(dim)
        total += size
    return total


def _check_block_against_specification(case: dict, observed: dict) -> None:
    """The docstring fixes every layer, so a block built to it has the specification's parameter count and, with
    the same weights, computes the same function. The parts are compared only to say what to fix."""
    cin, cout, stride = case["config"]
    block, parts = _reference_block(cin, cout, stride, case["seed"])
    count = sum(p.numel() for p in block.parameters())
    with torch.no_grad():
        expected = block(case["input"])
    call = _call(cin, cout, stride)
    differ = [f"{name}: yours {str(observed['parts'].get(name))[:120]}, specified {want}" for name, want in parts.items()
              if observed["parts"].get(name) != want]
    hint = ("; parts that differ from the docstring: " + "; ".join(differ)) if differ else ""
    yours = _count(observed["parameters"])
    if yours != count:
        raise CheckFailed(f"{call} has {yours:,} parameters; the docstring's block has {count:,}"
                          f"{hint or ' (check the bias=False convolutions and the BatchNorms)'}")
    y = observed["output"]
    if not isinstance(y, torch.Tensor) or not _close(y, expected):
        gap = float((y - expected).abs().max()) if isinstance(y, torch.Tensor) and y.shape == expected.shape \
            else float("nan")
        raise CheckFailed(f"with the same weights as the docstring's block, {call} (eval mode) computes a different "
                          f"function (largest difference {gap:.3g}){hint}: check the order conv1 (stride here) "
                          "→ bn1 → ReLU → conv2 → bn2, then add the shortcut, then the final ReLU")


def check_segmentation_model(obs: dict, ctx: CheckContext) -> str | PartialCredit:
    """Five parts, 10 points: shapes, resolution of both variants, gradient, the docstring's layout, and what the
    skip connections carry, on the grader's per-run inputs and seeds."""
    data = _authentic(obs, ctx, "segmentation_model", ("SegmentationModel",))
    challenge = ctx.inputs["model"]
    return score_parts([
        Part("shapes", 3, lambda: _model_shapes(challenge["logits"], data["logits"])),
        Part("resolution", 2, lambda: _model_resolution(challenge["size_input"], data["conv_sizes"])),
        Part("gradient", 1, lambda: _gradient_reaches(_first_conv_grad(data["first_grad"]), None,
                                                      "the first convolution")),
        Part("layout", 2, lambda: _model_layout(data)),
        Part("skips", 2, lambda: _model_skips(data["skips"])),
    ])


def _first_conv_grad(grad):
    return grad if isinstance(grad, torch.Tensor) and grad.dim() == 4 and grad.shape[1] == 3 else None


def _model_shapes(cases: list, observed: list) -> str:
    if len(observed) != len(cases):
        raise CheckFailed("the model's logits do not answer the grader's inputs")
    for case, y in zip(cases, observed):
        n, _, h, w = case["input"].shape
        call = f"SegmentationModel(downsample={case['downsample']})"
        y = _tensor(y, call)
        if tuple(y.shape) != (n, 21, h, w):
            raise CheckFailed(f"{call} on ({n}, 3, {h}, {w}) gave {tuple(y.shape)}, expected ({n}, 21, {h}, {w})")
        if y.dtype != torch.float32 or not torch.isfinite(y).all():
            raise CheckFailed(f"logits must be finite float32, got {y.dtype}")
    return "(N, 21, H, W) finite float32 logits with and without downsampling"


def _model_resolution(x: torch.Tensor, sizes: dict) -> str:
    side = x.shape[-1]
    down, full = sizes.get("True") or [side], sizes.get("False") or [0]
    if min(down) > side // 8:
        raise CheckFailed(f"on a {side}×{side} input, downsample=True never goes below {min(down)}×{min(down)} "
                          f"(expected stages down to 1/8, {side // 8}×{side // 8})")
    if min(full) != side or max(full) != side:
        raise CheckFailed("downsample=False must keep full resolution in every convolution")
    return "down to 1/8 with downsampling, full resolution without"


@functools.lru_cache(maxsize=None)
def _specified_count(config: tuple) -> int:
    """The parameter count of the docstring's layout (the reference) at one configuration (sorted kwargs items)."""
    from autograder.reference.segmentation_hw import SegmentationModel

    with torch.device("meta"):  # shapes only
        return sum(p.numel() for p in SegmentationModel(**dict(config)).parameters())


def _model_layout(data: dict) -> str:
    for kwargs in MODEL_CONFIGS:
        specified = _specified_count(tuple(sorted(kwargs.items())))
        yours = _count(data["parameters"].get(repr(sorted(kwargs.items())), {}))
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


MAX_TRACE_CHANNELS, MAX_TRACE_CALLS = 256, 64  # far above what width 4 on a 32×32 input makes (24 channels, 5 calls)


def _plausible_trace(trace: dict) -> None:
    """The trace's tensors are what a small model on a 32×32 input makes; the checks below compare channel runs, and a
    forged trace of huge tensors must not keep the grader busy."""
    calls = trace["blocks"]
    tensors = [trace["stem_bn"], trace["head_input"], trace["head_output"], trace["logits"]]
    if not isinstance(calls, list) or len(calls) > MAX_TRACE_CALLS or any(len(pair) != 2 for pair in calls):
        raise CheckFailed("the skip trace is not what a model makes on the grader's 32×32 input")
    tensors += [t for pair in calls for t in pair]
    if any(not isinstance(t, torch.Tensor) or t.dim() != 4 or t.shape[0] != 1 or t.shape[1] > MAX_TRACE_CHANNELS
           or t.shape[-1] > 32 or t.shape[-2] > 32 for t in tensors):
        raise CheckFailed("the skip trace is not what a model of width 4 makes on the grader's 32×32 input")


def _model_skips(trace: dict) -> str:
    """The docstring's skips, by what they carry (no attribute names): each fuse block's input holds the encoder's
    output at that size, and the classifier's input holds the stem's features (ReLU of the first BatchNorm)."""
    if trace.get("stem_bn") is None or trace.get("head_input") is None:
        raise CheckFailed("no BatchNorm or convolution ran: the stem is conv 3×3 → BatchNorm → ReLU")
    _plausible_trace(trace)
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


def _batchnorm_statistic(name: str, tensor) -> bool:
    """A BatchNorm's running statistic by its name and its shape: one value per channel (``num_batches_tracked``: a
    scalar). Round 6 stored copies of a classmate's convolution weights as buffers named ``aux.N.running_mean``,
    4-D, so that the similarity report paired them instead of the real weights; they are data beside the weights."""
    return name.rsplit(".", 1)[-1] in BATCHNORM_STATISTICS and tensor.dim() <= 1


def check_parameter_count(obs: dict, ctx: CheckContext) -> str:
    """The Q1 table's parameter count is the submitted checkpoint's, counted here from its tensors: the sandbox only
    names which tensors the class holds as parameters; whatever else the checkpoint stores (besides BatchNorm
    statistics) is reported to the TA and counts toward the limit."""
    facts = ctx.checkpoint
    if facts is None:
        raise CheckFailed(ctx.checkpoint_error or f"no checkpoint: {CHECKPOINT} is missing from the submission")
    data = _authentic(obs, ctx, "parameters", ("SegmentationModel",))
    names = data.get("names")
    if not isinstance(names, list) or len(set(names)) != len(names) or not set(names) <= set(facts.state):
        forged(ctx, "the class's parameter names do not match the checkpoint's tensors")
    params = sum(facts.state[name].numel() for name in names)
    others = sorted(n for n in facts.state if n not in names and not _batchnorm_statistic(n, facts.state[n]))
    if others:
        ctx.flags.append(f"the checkpoint stores {facts.stored - params:,} values besides its parameters and "
                            f"BatchNorm statistics ({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}): "
                            "data carried beside the weights (remembered answers?)")
    _layout_consistency(obs, ctx, facts, names)
    reported = ctx.reported.get("num_parameters")
    saved = ctx.results_metrics.get("num_parameters")
    counted = f"{params:,}" + (f" ({facts.stored:,} values stored in all)" if facts.stored != params else "")
    if reported is None:
        raise CheckFailed("the results table (Q1) reports no parameter count")
    if int(reported) not in (params, facts.stored):
        raise CheckFailed(f"the table reports {int(reported):,} parameters; the submitted model has {counted}")
    if saved is not None and int(saved) not in (params, facts.stored):
        raise CheckFailed(f"{RESULTS} says {int(saved):,} parameters; the submitted model has {counted}")
    if facts.stored > MAX_PARAMETERS:
        raise CheckFailed(f"{counted} parameters exceeds the limit of {MAX_PARAMETERS:,}")
    return f"{params:,} parameters, as reported, within the limit"


def _layout_consistency(obs: dict, ctx: CheckContext, facts, names: list[str]) -> None:
    """A class that builds the docstring's layout at every probed configuration holds, when it loads the checkpoint
    strictly, the docstring's parameter shapes for the checkpoint's own configuration. When it does not, the
    predictions cannot have come from that class: flagged."""
    from autograder.reference.segmentation_hw import SegmentationModel

    kwargs = facts.model_kwargs
    bounds = {"num_classes": 1000, "width": 4096, "num_blocks": 64, "in_channels": 64}  # building stays cheap
    if not all(isinstance(kwargs.get(k, 1), int) and 0 < kwargs.get(k, 1) <= most for k, most in bounds.items()):
        return  # a configuration far beyond the limit's size: the parameter count speaks for it
    try:
        _model_layout(obs.get("segmentation_model") or {})
        with torch.device("meta"):  # shapes only: the saved configuration may be anything
            reference = SegmentationModel(**facts.model_kwargs)
    except Exception:
        return
    specified = sorted(tuple(p.shape) for p in reference.parameters())
    if sorted(tuple(facts.state[n].shape) for n in names) != specified:
        ctx.flags.append("the class builds the docstring's layout, yet the checkpoint it loaded does not have it "
                            "(predictions from another model?)")


def _recomputed(ctx: CheckContext) -> dict:
    """The mIoU the grader computed from the checkpoint's predictions; none when the class that made them cannot
    run (predictions from a stub were forged)."""
    if ctx.miou is not None:
        stubs = unimplemented_classes(ctx.cells, ("SegmentationModel",))
        if stubs:
            forged(ctx, "predictions came back for SegmentationModel, which the submitted code leaves unimplemented: "
                        "the observations were forged")
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
        """The tier is judged on the mIoU recomputed on the held-out data alone (data drawn from the term's secret):
        no answer about the public split, looked up or not, can move it; against the term's declared threshold
        (``ctx.tiers``, from ``GradedSetting.tiers``)."""
        threshold = getattr(ctx.tiers or Tiers(), name)
        miou = _recomputed(ctx)
        score = miou["effective"]
        note = f" ({miou['heldout_kind']}; the validation split: {miou['public']:.4f})"
        if score < threshold:
            raise CheckFailed(f"held-out mIoU {score:.4f} is below {threshold}{note}{_mismatch(ctx)}")
        return f"held-out mIoU {score:.4f}{note} >= {threshold}"

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
    code_cells=CODE_CELLS,
    checks=CHECKS,
    points={"test_residual_block": 10, "test_segmentation_model": 10, "test_results_table": 3,
            **{gid: 5 for gid in TIERS}, "test_parameter_count": 5, "test_answers_complete": 2},
    probes_file=Path(__file__).with_name("segmentation_hw_probes.py"),
    make_inputs=make_challenge,
    checkpoint=CHECKPOINT,
    results_file=RESULTS,
    results_table_cell="q1_results_table",
    reference_artifacts=(CHECKPOINT, "segmentation_hw_nodown_checkpoint.pt"),
)
