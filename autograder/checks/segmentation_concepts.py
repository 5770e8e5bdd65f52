"""Hidden checks of Assignment 2 (segmentation concepts), one per autograded cell.

The grader makes every input here (``make_inputs``), the sandbox only returns the student's outputs for them,
and each verdict compares those outputs with an oracle computed in the grader's process: torchvision
(``roi_align``, ``sigmoid_focal_loss``), the grader's own oracles (``autograder.oracles``: boundaries, boundary F1,
mask AP, panoptic quality, Dice, median-frequency weights), course_lib's IoU and upsampling blocks (what the
homework uses), torch's FLOP counter, attention and convolution, gradients, or the reference solution. Each hidden
check asks what its visible cell asks, on other inputs of the kinds the visible cell's first comment lists.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
import torchvision
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from autograder.assignment import Assignment, CheckContext
from autograder.checks.common import CheckFailed, Part, check_answers_complete, score_parts
from autograder.inspection import PARSING
from autograder.reference import segmentation_concepts as reference
from autograder.oracles import (
    average_precision, binary_boundary_f1, dice_per_class, mask_boundary, median_frequency_weights, panoptic_quality,
)
from course_lib.metrics import iou_per_class
from course_lib.models import count_parameters, make_upsampler
from course_lib.own_code import SANDBOX_MODULES, own_code_problems

TOPICS = ("t1_panoptic", "t2_unet", "t3_roi_align", "t4_losses", "t5_atrous", "t6_metrics", "t7_sam",
          "t8_upsampling", "t9_imbalance", "t10_segformer")

# Points of the written answers, graded by hand in formgrader: one point per item of the list under each question
# (the notebook's nbgrader metadata says the same: tested).
WRITTEN_POINTS = {"q1_answer": 5, "q2_answer": 6, "q3_answer": 5, "q4_answer": 5, "q5_answer": 5, "q6_answer": 6,
                  "q7_answer": 5, "q8_answer": 5, "q9_answer": 5, "q10_answer": 5}


def make_inputs() -> dict:
    g = torch.Generator().manual_seed(1234)
    semantic = torch.randint(0, 4, (12, 12), generator=g)
    masks = torch.zeros(3, 12, 12, dtype=torch.bool)
    masks[0, 2:6, 2:6] = masks[1, 4:9, 4:9] = masks[2, 9:12, 0:3] = True
    empty = torch.zeros(0, 12, 12, dtype=torch.bool)
    feature = torch.randn(3, 9, 11, generator=g)
    matrices = [torch.randint(0, 30, (5, 5), generator=g), torch.tensor([[10, 0, 0], [0, 0, 0], [3, 0, 7]]),
                torch.tensor([[5, 0, 0, 0], [0, 4, 1, 0], [0, 0, 0, 0], [2, 1, 0, 0]])]  # class 3: misses only
    candidates = torch.randn(3, 8, 8, generator=g)  # three candidate masks of one click: sharp, soft, empty
    candidates[0] = candidates[0].sign() * 6
    candidates[1] = candidates[1] * 0.8
    candidates[2] = -4.0
    truth = torch.full((12, 12), 3000)  # road (stuff), two cars, a person, a void row
    truth[1:6, 1:6], truth[6:11, 6:11], truth[0:3, 8:12], truth[11] = 1001, 1002, 2001, -1
    pred = truth.clone()
    pred[1:6, 1:4], pred[6:11, 6:9] = 1007, 1005  # the first car split, the second shrunk
    pred[11, 0:8], pred[0:3, 8:12] = 4001, 3000  # a bicycle on void (ignored: no class 4 at all); the person missed
    noisy = torch.randint(0, 3, (10, 10), generator=g) * 1000
    spill_truth = torch.full((6, 6), 3000)  # a car whose prediction spills over void: a match all the same
    spill_truth[0:2, 0:2], spill_truth[0:2, 2:5], spill_truth[5] = 1001, -1, -1
    spill_pred = spill_truth.clone()
    spill_pred[0:2, 0:5], spill_pred[5, 0:3] = 1001, 2001  # the car over void; a person on void (ignored)
    pq_cases = [(pred, truth), (noisy.masked_fill(torch.rand(10, 10, generator=g) > 0.7, 1000), noisy), (truth, truth),
                (torch.full((4, 4), -1), torch.full((4, 4), 1001)), (spill_pred, spill_truth),
                (torch.full((3, 3), -1), torch.full((3, 3), -1)), _pq_on_the_thresholds()]
    return {
        "t1": {"cases": [{"semantic": semantic, "masks": masks, "classes": torch.tensor([2, 3, 2]), "things": [2, 3]},
                         {"semantic": semantic, "masks": empty, "classes": torch.zeros(0, dtype=torch.long), "things": [1]}],
               "pq_cases": pq_cases},
        "t2": _boundary_inputs(g),
        "t3": {"feature": feature, "output_size": 3, "sampling_ratio": 2,
               "boxes": [torch.tensor([1.0, 1.5, 7.2, 6.0]), torch.tensor([0.0, 0.0, 10.9, 8.9]),
                         torch.tensor([3.3, 2.7, 4.1, 3.9]),
                         # off the top-left and the bottom-right corners: samples beyond -1 or H, W read 0, samples
                         # between -1 and 0 or between H - 1 and H read the first or the last row and column
                         torch.tensor([-2.0, -1.6, 3.0, 2.4]), torch.tensor([8.0, 6.5, 12.6, 10.2])],
               "mask_logits": torch.randn(4, 5, 6, 6, generator=g), "labels": torch.tensor([0, 3, 3, 1]),
               "targets": (torch.rand(4, 6, 6, generator=g) > 0.5).float()},
        "t4": {"logits": torch.randn(2, 1, 8, 8, generator=g) * 2, "targets": (torch.rand(2, 1, 8, 8, generator=g) > 0.85).float(),
               "focal_params": [(0.25, 2.0), (0.5, 0.0), (0.9, 3.0)], "tversky_params": [(0.5, 0.5), (0.3, 0.7), (0.7, 0.3)]},
        "t5": {"stacks": [[(3, 1, 1)], [(3, 2, 1), (3, 4, 1)], [(3, 1, 2), (3, 2, 1), (5, 1, 1)], [(3, 1, 1)] * 4],
               "size": 97},
        "t6": {"matrices": matrices, "ap_cases": _ap_cases(g)},
        "t7": {"points": torch.rand(4, 2, generator=g), "frequencies": torch.randn(2, 8, generator=g),
               "stability_cases": [(candidates, 1.0), (candidates, 0.25), (torch.randn(3, 7, 5, generator=g) * 3, 2.0)],
               # the stabilities are the grader's, so a wrong stability_score never costs the filter's points
               "plausible_cases": [(candidates, torch.tensor([0.93, 0.97, 0.90]), torch.tensor([1.0, 0.125, 1.0]), (0.88, 0.95)),
                                   (candidates, torch.tensor([0.90, 0.97, 0.90]), torch.tensor([1.0, 0.5, 1.0]), (0.5, 0.0)),
                                   (candidates, torch.tensor([0.5, 0.6, 0.7]), torch.tensor([1.0, 0.96, 0.2]), (0.88, 0.95)),
                                   (candidates, torch.tensor([0.95, 0.95, 0.97]), torch.tensor([0.96, 0.97, 0.99]), (0.9, 0.95)),
                                   # scores equal to the thresholds ("at least"), in values exact in float32 and float64
                                   (candidates, torch.tensor([0.875, 0.97, 0.9]), torch.tensor([0.9375, 1.0, 0.875]),
                                    (0.875, 0.9375))]},
        "t8": {"coverage_args": [(3, 2, 5), (2, 2, 4), (4, 2, 3), (3, 1, 4)], "param_args": [(8, 4), (64, 32)]},
        "t9": {"weight_cases": _weight_cases(g),
               "ohem_cases": [(torch.rand(2, 5, 5, generator=g), 0.2),
                              (torch.tensor([0.3, 0.9, 0.1, 0.6, 0.2]), 0.05)]},  # round(0.25) = 0: at least one kept
        "t10": {"flop_args": [(4096, 32, 8), (1024, 64, 4), (256, 160, 2), (64, 256, 1)],
                "attention_cases": [{"tokens": torch.randn(h * w, c, generator=g) * 2, "height": h, "width": w,
                                     "sr_ratio": r} for h, w, c, r in [(8, 8, 16, 2), (6, 9, 8, 3), (4, 4, 4, 1),
                                                                       (12, 8, 5, 4)]],
                "depthwise_cases": [(torch.randn(c, h, w, generator=g), torch.randn(c, 3, 3, generator=g))
                                    for c, h, w in [(3, 7, 9), (1, 1, 1), (2, 2, 5), (4, 6, 6)]]
                + [(torch.ones(1, 5, 6), torch.ones(1, 3, 3))]},
    }


def _weight_cases(g: torch.Generator) -> list[tuple[torch.Tensor, int]]:
    """Mask sets for ``median_frequency_weights``: one image; several images where classes occur in some of them only
    (the denominator of Eigen and Fergus's frequency is what changes); ignored pixels; an even number of classes."""
    one = torch.tensor([[[0, 0, 0, 0, 1, 1], [0, 0, 2, 255, 255, 0]]])
    several = torch.randint(0, 3, (4, 6, 6), generator=g)
    several[0][several[0] == 2] = 0  # class 2 absent from image 0, class 3 only in image 3
    several[3, :3, :3] = 3
    several[1, 0] = 255
    even = torch.tensor([[[0, 0, 0, 1], [0, 0, 255, 1]], [[0, 0, 0, 0], [0, 0, 0, 0]]])
    return [(one, 4), (several, 5), (even, 2)]


def _blobs(count: int, height: int, width: int, g: torch.Generator, density: float = 0.93) -> torch.Tensor:
    """(count, H, W) bool: random seeds grown by a 5x5 max pool, irregular shapes with holes and edges."""
    seeds = (torch.rand(count, 1, height, width, generator=g) > density).float()
    return F.max_pool2d(seeds, 5, stride=1, padding=2)[:, 0] > 0


def _boundary_inputs(g: torch.Generator) -> dict:
    """Masks for ``mask_boundary`` and (prediction, truth, tolerance) cases for ``boundary_f1``; the F1 cases carry
    the grader's boundaries, so a wrong ``mask_boundary`` never costs the F1's points."""
    blob, other = _blobs(2, 16, 20, g)
    dot, line = torch.zeros(7, 7, dtype=torch.bool), torch.zeros(9, 12, dtype=torch.bool)
    dot[3, 3], line[4, :] = True, True  # a single pixel; a one-pixel line that touches both sides of the image
    corner = torch.zeros(8, 8, dtype=torch.bool)
    corner[:4, :5] = True  # touches the top and left edges
    masks = [blob, other, dot, line, corner, torch.ones(6, 6, dtype=torch.bool), torch.zeros(5, 7, dtype=torch.bool)]
    far = torch.zeros(16, 20, dtype=torch.bool)
    far[0:3, 0:3] = True
    near_blob = torch.zeros(16, 20, dtype=torch.bool)
    near_blob[12:16, 15:20] = True
    pairs = [(torch.roll(blob, 1, 1), blob, 0), (torch.roll(blob, 1, 1), blob, 1), (torch.roll(blob, (2, 1), (0, 1)), blob, 1),
             (other, blob, 2), (blob, blob, 0), (far, near_blob, 0), (far, near_blob, 20),
             (torch.zeros_like(blob), torch.zeros_like(blob), 1), (torch.zeros_like(blob), blob, 3),
             (torch.ones(16, 20, dtype=torch.bool), blob, 1)]
    cases = [{"pred": p, "truth": t, "tolerance": tol, "pred_boundary": mask_boundary(p[None])[0],
              "true_boundary": mask_boundary(t[None])[0]} for p, t, tol in pairs]
    return {"masks": masks, "f1_cases": cases}


def _pq_on_the_thresholds() -> tuple[torch.Tensor, torch.Tensor]:
    """(pred, truth) on the two boundaries the docstring draws: a car predicted at IoU exactly 0.5 (no match: a false
    positive and a false negative) and a person exactly half on void (a false positive all the same)."""
    truth = torch.tensor([[1001, 1001, 3000, 3000], [1001, 1001, 3000, 3000], [3000, 3000, 3000, 3000], [-1, -1, -1, -1]])
    pred = torch.tensor([[1001, 3000, 3000, 3000], [1001, 3000, 3000, 3000], [2001, 2001, 3000, 3000],
                         [2001, 2001, 4001, 4001]])  # the bicycle (class 4) lies wholly on void: ignored
    return pred, truth


def _best_not_first_scene() -> list[dict]:
    """Three objects; the best-scored prediction overlaps the first at IoU 1/3 and the second at IoU 1/2, so the
    object it takes (the one it overlaps most) decides whether the next prediction, the second object exactly, is a
    hit. At threshold 0.5 its IoU with the second object is the threshold itself (a match: IoU >= t)."""
    truth = torch.zeros(3, 12, 12, dtype=torch.bool)
    truth[0, 0:4, 0:4] = truth[1, 0:4, 5:9] = truth[2, 7:11, 0:4] = True
    straddling = torch.zeros(12, 12, dtype=torch.bool)
    straddling[0:4, 1:9] = True
    pred = torch.stack([straddling, truth[1], truth[2]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    return [{"pred_masks": pred, "scores": scores, "true_masks": truth, "iou_threshold": t} for t in (0.3, 0.5)]


def _ap_cases(g: torch.Generator) -> list[dict]:
    """Scenes for ``mask_ap``: exact, shifted and duplicated predictions and false positives. G is 1, 3 or 7, so no
    recall TP / G falls on a recall level r = k / 100 other than 0 and 1 (no answer hinges on rounding there)."""
    cases = []
    for objects, thresholds in [(3, (0.5, 0.75)), (7, (0.3, 0.5, 0.9)), (1, (0.5,))]:
        truth = _blobs(objects, 24, 24, g, density=0.985)
        guesses = []
        for k in range(objects):
            dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
            guesses.append(torch.roll(truth[k], (dy, dx), (0, 1)))
        guesses += [truth[0].clone(), _blobs(1, 24, 24, g, density=0.99)[0]]  # a duplicate, a stray detection
        pred = torch.stack(guesses)
        scores = torch.randperm(len(guesses), generator=g).float() / len(guesses) + 0.01  # all different
        cases += [{"pred_masks": pred, "scores": scores, "true_masks": truth, "iou_threshold": t} for t in thresholds]
    return cases + _best_not_first_scene()


def _outputs(obs: dict, probe: str, cell: str) -> dict:
    """The probe's outputs for one cell; a failure of the whole probe (the sandbox, an exit) fails every part."""
    data = obs.get(probe)
    if data is None:
        raise CheckFailed(obs.get("sandbox_error", "your code could not be run"))
    cell_error = obs.get("cell_errors", {}).get(cell)
    note = f"; the cell {cell} raised {cell_error}" if cell_error else ""
    if "error" in data:
        raise CheckFailed(data["error"] + note)
    return {**data, "_note": note}


def _value(out: dict, key: str, count: int | None = None):
    """One function's outputs; when that function raised, its part fails with the error (the others still count).
    ``count``: the number of outputs the probe makes (one per input case); any other number is a forged result."""
    value = out[key]
    if isinstance(value, dict) and "error" in value:
        raise CheckFailed(value["error"] + out.get("_note", ""))
    if count is not None and len(value) != count:
        raise CheckFailed(f"{key}: {len(value)} results for {count} inputs")
    return value


def _close(a, b, what: str, atol: float = 1e-5) -> None:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    if a.shape != b.shape:
        raise CheckFailed(f"{what}: shape {tuple(a.shape)}, expected {tuple(b.shape)}")
    if not torch.allclose(a, b, atol=atol, rtol=1e-4, equal_nan=True):
        raise CheckFailed(f"{what}: largest difference {float((a - b).abs().nan_to_num(0).max()):.3g}")


def _own_code(ctx: CheckContext, cell: str) -> None:
    """The own-code rule (``course_lib.own_code``), applied here in the grader's process to the cell's source."""
    with PARSING:  # it parses the cell (``inspection.PARSING``)
        problem = own_code_problems({cell: ctx.cells.get(cell, "")}).get(cell)
    if problem:
        raise CheckFailed(f"the {cell} cell {problem}")


def check_t1_panoptic(obs, ctx):
    _own_code(ctx, "t1_panoptic")
    out, x = _outputs(obs, "t1", "t1_panoptic"), ctx.inputs["t1"]

    def maps():
        for i, (case, got) in enumerate(zip(x["cases"], _value(out, "cases", len(x["cases"])))):
            expected = reference.panoptic_map(case["semantic"], case["masks"], case["classes"], case["things"])
            got = torch.as_tensor(got).long()
            if got.shape != expected.shape:
                raise CheckFailed(f"case {i}: a map of shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
            if not torch.equal(got, expected):
                raise CheckFailed(f"case {i}: the panoptic map differs from the expected one at "
                                  f"{int((got != expected).sum())} pixels")
        return "things with instance ids, stuff with class only, unclaimed thing pixels void"

    def quality():
        for i, ((pred, truth), got) in enumerate(zip(x["pq_cases"], _value(out, "pq", len(x["pq_cases"])))):
            want = _oracle_pq(pred, truth)
            if len(got) != 3 or not all(math.isclose(a, b, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b))
                                        for a, b in zip(got, want)):
                raise CheckFailed(f"case {i}: (PQ, SQ, RQ) = {tuple(round(v, 4) for v in got)}, "
                                  f"expected {tuple(round(v, 4) for v in want)}")
        return "PQ, SQ and RQ right on six maps (split, shrunk, missed and void-covered segments)"

    return score_parts([Part("panoptic_map", 3, maps), Part("panoptic_quality", 3, quality)])


def _oracle_pq(pred: torch.Tensor, truth: torch.Tensor) -> tuple[float, float, float]:
    """The oracle on maps in the notebook's encoding: every class present is a thing (stuff has instance 0)."""
    known = {v // 1000 for v in torch.cat([pred.flatten(), truth.flatten()]).tolist() if v >= 0}
    split = lambda m: (torch.div(m, 1000, rounding_mode="floor"), torch.remainder(m, 1000))
    result = panoptic_quality(*split(pred), *split(truth), things=known, stuffs=set())
    return result["pq"], result["sq"], result["rq"]


def check_t2_unet(obs, ctx):
    _own_code(ctx, "t2_unet")
    out, x = _outputs(obs, "t2", "t2_unet"), ctx.inputs["t2"]

    def boundaries():
        for i, (mask, got) in enumerate(zip(x["masks"], _value(out, "boundaries", len(x["masks"])))):
            want = mask_boundary(mask[None])[0]
            got = torch.as_tensor(got)
            if got.shape != want.shape or not torch.equal(got.bool(), want):
                wrong = int((got.bool() != want).sum()) if got.shape == want.shape else "all"
                raise CheckFailed(f"mask {i} ({tuple(mask.shape)}): {wrong} pixels differ from the expected boundary "
                                  "(mask pixels with a 4-neighbour outside; the image edge counts as inside)")
        return "right on seven masks (blobs, a pixel, a line and a corner on the edge, full, empty)"

    def f1():
        for case, got in zip(x["f1_cases"], _value(out, "f1", len(x["f1_cases"]))):
            want = binary_boundary_f1(case["pred"], case["truth"], case["tolerance"])
            if not math.isclose(got, want, abs_tol=1e-5):  # float32 arithmetic is as correct as exact fractions
                raise CheckFailed(f"boundary_f1(tolerance={case['tolerance']}) = {got:.4f}, expected {want:.4f} "
                                  f"({int(case['pred_boundary'].sum())} predicted and {int(case['true_boundary'].sum())} "
                                  "true boundary pixels)")
        return "right on ten pairs (shifts, tolerances, empty and boundary-free maps)"

    return score_parts([Part("mask_boundary", 3, boundaries), Part("boundary_f1", 3, f1)])


def check_t3_roi_align(obs, ctx):
    _own_code(ctx, "t3_roi_align")
    out, x = _outputs(obs, "t3", "t3_roi_align"), ctx.inputs["t3"]

    def roi_align():
        for box, got in zip(x["boxes"], _value(out, "rois", len(x["boxes"]))):
            rois = torch.cat([torch.zeros(1), box]).unsqueeze(0)
            expected = torchvision.ops.roi_align(x["feature"].unsqueeze(0), rois, x["output_size"], 1.0,
                                                 x["sampling_ratio"], aligned=True)[0]
            _close(got, expected, f"roi_align_one on box {box.tolist()} vs torchvision.ops.roi_align", atol=1e-4)
        return "matches torchvision.ops.roi_align"

    def mask_loss():
        _close(_value(out, "loss"), reference.mask_head_loss(x["mask_logits"], x["labels"], x["targets"]), "mask_head_loss")
        return "uses only the ground-truth class's mask"

    return score_parts([Part("roi_align_one", 4, roi_align), Part("mask_head_loss", 2, mask_loss)])


def check_t4_losses(obs, ctx):
    _own_code(ctx, "t4_losses")
    out, x = _outputs(obs, "t4", "t4_losses"), ctx.inputs["t4"]

    def focal():
        for (alpha, gamma), got in zip(x["focal_params"], _value(out, "focal", len(x["focal_params"]))):
            expected = torchvision.ops.sigmoid_focal_loss(x["logits"], x["targets"], alpha, gamma, reduction="mean")
            _close(got, expected, f"sigmoid_focal_loss(alpha={alpha}, gamma={gamma}) vs torchvision")
        return "matches torchvision for three (alpha, gamma)"

    def tversky():
        for (alpha, beta), got in zip(x["tversky_params"], _value(out, "tversky", len(x["tversky_params"]))):
            _close(got, reference.binary_tversky_loss(x["logits"], x["targets"], alpha, beta),
                   f"binary_tversky_loss(alpha={alpha}, beta={beta})")
        return "right for three (alpha, beta)"

    return score_parts([Part("sigmoid_focal_loss", 3, focal), Part("binary_tversky_loss", 3, tversky)])


@functools.lru_cache(maxsize=64)
def _measured_field(layers: tuple, size: int) -> int:
    """The receptive field the gradients show (the reference's measurement), once per stack."""
    from autograder.checks.segmentation_concepts_probes import _conv_stack

    return reference.empirical_receptive_field(_conv_stack(layers), size)


def check_t5_atrous(obs, ctx):
    _own_code(ctx, "t5_atrous")
    out, x = _outputs(obs, "t5", "t5_atrous"), ctx.inputs["t5"]
    truths = [_measured_field(tuple(tuple(layer) for layer in layers), x["size"]) for layers in x["stacks"]]

    def compare(key, name):
        def run():
            for layers, value, truth in zip(x["stacks"], _value(out, key, len(x["stacks"])), truths):
                if value != truth:
                    raise CheckFailed(f"{name} on {layers} = {value}; the gradients say {truth}")
            return "agrees with the gradients on four stacks"
        return run

    return score_parts([Part("receptive_field", 3, compare("analytic", "receptive_field")),
                        Part("empirical_receptive_field", 3, compare("empirical", "empirical_receptive_field"))])


def check_t6_metrics(obs, ctx):
    _own_code(ctx, "t6_metrics")
    out, matrices = _outputs(obs, "t6", "t6_metrics"), ctx.inputs["t6"]["matrices"]

    def iou_and_dice():
        pairs = _value(out, "iou_and_dice")
        if len(pairs["iou"]) != len(matrices) or len(pairs["dice"]) != len(matrices):
            raise CheckFailed(f"iou_and_dice: results for {len(pairs['iou'])} of {len(matrices)} matrices")
        for cm, iou, dice in zip(matrices, pairs["iou"], pairs["dice"]):
            _close(iou, iou_per_class(cm), "IoU per class")
            _close(dice, dice_per_class(cm), "Dice per class")
        return "IoU and Dice per class right (absent classes NaN)"

    def ap():
        for case, got in zip(ctx.inputs["t6"]["ap_cases"], _value(out, "ap", len(ctx.inputs["t6"]["ap_cases"]))):
            want = average_precision(case["pred_masks"], case["scores"], case["true_masks"], case["iou_threshold"])
            if not math.isclose(got, want, abs_tol=1e-6):
                raise CheckFailed(f"mask_ap with {case['pred_masks'].shape[0]} predictions, {case['true_masks'].shape[0]} "
                                  f"objects, IoU {case['iou_threshold']}: {got:.4f}, expected {want:.4f} (as pycocotools)")
        return "matches COCO's AP (the grader's oracle, itself checked against pycocotools)"

    return score_parts([Part("iou_and_dice", 3, iou_and_dice), Part("mask_ap", 3, ap)])


def check_t7_sam(obs, ctx):
    _own_code(ctx, "t7_sam")
    out, x = _outputs(obs, "t7", "t7_sam"), ctx.inputs["t7"]

    def encoding():
        _close(_value(out, "encoding"), reference.fourier_point_encoding(x["points"], x["frequencies"]), "fourier_point_encoding")
        return "right"

    def stability():
        for (logits, offset), got in zip(x["stability_cases"], _value(out, "stability", len(x["stability_cases"]))):
            _close(got, reference.stability_score(logits, offset), f"stability_score(offset={offset})")
        return "the IoU of the masks at +offset and -offset"

    def plausible():
        for (logits, scores, stable, thresholds), got in zip(x["plausible_cases"], _value(out, "plausible", len(x["plausible_cases"]))):
            want = reference.plausible_masks(logits, scores, stable, *thresholds)
            got = torch.as_tensor(got)
            if got.shape != want.shape or not torch.equal(got.bool(), want):
                raise CheckFailed(f"plausible_masks(scores={scores.tolist()}, thresholds={thresholds}) kept "
                                  f"{tuple(got.shape)}, expected {tuple(want.shape)} masks (well scored and stable, "
                                  "best first)")
        return "keeps the well-scored, stable candidates, best first"

    return score_parts([Part("fourier_point_encoding", 2, encoding), Part("stability_score", 2, stability),
                        Part("plausible_masks", 2, plausible)])


def check_t8_upsampling(obs, ctx):
    _own_code(ctx, "t8_upsampling")
    out, x = _outputs(obs, "t8", "t8_upsampling"), ctx.inputs["t8"]

    def coverage():
        for (k, s, n), got in zip(x["coverage_args"], _value(out, "coverage", len(x["coverage_args"]))):
            conv = nn.ConvTranspose1d(1, 1, k, stride=s, bias=False)
            nn.init.constant_(conv.weight, 1.0)
            with torch.no_grad():
                truth = conv(torch.ones(1, 1, n))[0, 0].round().long().tolist()
            if list(got) != truth:
                raise CheckFailed(f"transposed_conv_coverage({k}, {s}, {n}) = {list(got)}; ConvTranspose1d gives {truth}")
        return "matches ConvTranspose1d"

    def parameters():
        names = {"transposed": "transposed", "bilinear+conv": "bilinear", "pixelshuffle": "pixelshuffle"}
        for (cin, cout), got in zip(x["param_args"], _value(out, "params", len(x["param_args"]))):
            for key, mode in names.items():
                real = count_parameters(make_upsampler(mode, cin, cout))
                if got.get(key) != real:
                    raise CheckFailed(f"upsampler_parameters({cin}, {cout})[{key!r}] = {got.get(key)}, the block has {real}")
        return "match the three blocks"

    return score_parts([Part("transposed_conv_coverage", 3, coverage), Part("upsampler_parameters", 3, parameters)])


def check_t9_imbalance(obs, ctx):
    _own_code(ctx, "t9_imbalance")
    out, x = _outputs(obs, "t9", "t9_imbalance"), ctx.inputs["t9"]

    def weights():
        for i, ((masks, num_classes), got) in enumerate(zip(x["weight_cases"], _value(out, "weights", len(x["weight_cases"])))):
            _close(got, median_frequency_weights(masks, num_classes),
                   f"median-frequency weights of mask set {i} ({masks.shape[0]} image(s), {num_classes} classes)")
        return "Eigen and Fergus's weights right on three mask sets"

    def ohem():
        for (losses, fraction), got in zip(x["ohem_cases"], _value(out, "keep", len(x["ohem_cases"]))):
            expected = reference.ohem_keep_mask(losses, fraction)
            got = torch.as_tensor(got)
            if got.shape != expected.shape or not torch.equal(got.bool(), expected):
                raise CheckFailed(f"ohem_keep_mask(keep_fraction={fraction}) on {losses.numel()} losses must keep "
                                  f"exactly the {int(expected.sum())} largest")
        return "keeps exactly the largest losses, at least one"

    return score_parts([Part("median_frequency_weights", 3, weights), Part("ohem_keep_mask", 3, ohem)])


def check_t10_segformer(obs, ctx):
    _own_code(ctx, "t10_segformer")
    out, x = _outputs(obs, "t10", "t10_segformer"), ctx.inputs["t10"]

    def flops():
        for (n, dim, r), got in zip(x["flop_args"], _value(out, "flops", len(x["flop_args"]))):
            q, kv = torch.zeros(n, dim), torch.zeros(n // r**2, dim)
            with FlopCounterMode(display=False) as counter:
                (q @ kv.t()).softmax(-1) @ kv
            if got != counter.get_total_flops():
                raise CheckFailed(f"attention_flops({n}, {dim}, {r}) = {got:,}; torch counts {counter.get_total_flops():,}")
        return "match torch's FLOP counter"

    def attention():
        for case, got in zip(x["attention_cases"], _value(out, "attention", len(x["attention_cases"]))):
            want = _reduced_attention(case["tokens"], case["height"], case["width"], case["sr_ratio"])
            _close(got, want, f"reduced_attention({case['height']}x{case['width']} grid, sr_ratio {case['sr_ratio']})",
                   atol=1e-4)
        return "matches attention over the average-pooled grid"

    def depthwise():
        for i, ((image, kernel), got) in enumerate(zip(x["depthwise_cases"], _value(out, "depthwise", len(x["depthwise_cases"])))):
            want = F.conv2d(image[None], kernel[:, None], padding=1, groups=image.shape[0])[0]
            _close(got, want, f"depthwise_conv3x3 on a {tuple(image.shape)} input (case {i})", atol=1e-4)
        return "matches a zero-padded depthwise convolution on five inputs"

    return score_parts([Part("attention_flops", 2, flops), Part("reduced_attention", 2, attention),
                        Part("depthwise_conv3x3", 2, depthwise)])


def _reduced_attention(tokens: torch.Tensor, height: int, width: int, sr_ratio: int) -> torch.Tensor:
    """The oracle: torch's scaled dot-product attention, keys and values average-pooled on the grid. (N, C)."""
    grid = tokens.t().reshape(1, tokens.shape[1], height, width)
    keys = F.avg_pool2d(grid, sr_ratio).flatten(2)[0].t()
    return F.scaled_dot_product_attention(tokens[None], keys[None], keys[None])[0]


CHECKS = {
    "test_t1_panoptic": check_t1_panoptic, "test_t2_unet": check_t2_unet, "test_t3_roi_align": check_t3_roi_align,
    "test_t4_losses": check_t4_losses, "test_t5_atrous": check_t5_atrous, "test_t6_metrics": check_t6_metrics,
    "test_t7_sam": check_t7_sam, "test_t8_upsampling": check_t8_upsampling, "test_t9_imbalance": check_t9_imbalance,
    "test_t10_segformer": check_t10_segformer, "test_answers_complete": check_answers_complete,
}

ASSIGNMENT = Assignment(
    name="segmentation_concepts",
    notebook="segmentation_concepts.ipynb",
    code_cells=TOPICS,
    checks=CHECKS,
    points={**{f"test_{topic}": 6 for topic in TOPICS}, "test_answers_complete": 2},
    probes_file=Path(__file__).with_name("segmentation_concepts_probes.py"),
    make_inputs=make_inputs,
    sandbox_modules=SANDBOX_MODULES,  # the own-code rule, by construction: nothing else is in the cells' sandbox
)
