"""Assignment 2: the docstring is the specification, and the visible check asks what the hidden one grades.

- For every graded function, an implementation of its docstring's literal words (loops over pixels and segments,
  written unlike the reference and unlike the alternatives of ``test_concepts_alternatives.py``) earns every point
  of the hidden check, and the docstring still says the words it was written from.
- Every visible test cell passes on the reference, on both alternatives and on the literal implementations, and
  fails on every planted bug that costs hidden points: a student whose visible check passes has met the same
  requirements the hidden check grades.
"""

from __future__ import annotations

import ast
import math
import textwrap

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks.segmentation_concepts import TOPICS
from notebooks import REPO, cells_by_id, hidden_regions
from test_concepts_alternatives import ALTERNATIVES, BUGS, EDGE_BUGS, judge, reference_cell, with_bug

CELLS = cells_by_id(nbformat.read(REPO / "source" / "segmentation_concepts" / "segmentation_concepts.ipynb",
                                  as_version=4))

# Each function: the phrases of its docstring the literal implementation follows, and that implementation.
LITERAL = {
    "t1_panoptic": ({
        "panoptic_map": ["``class * 1000`` on stuff pixels", "``class * 1000 + k + 1`` on the pixels of instance k",
                         "whatever\n        the semantic map says there", "a later instance is drawn over an earlier one",
                         "-1 (void) on\n        pixels whose semantic class is a thing but that no instance mask covers"],
        "panoptic_quality": ["the IoU of a predicted and a\n    true segment is computed on the non-void pixels only",
                             "match*\n    when that IoU exceeds 0.5", "unless more than\n    half of its pixels are void",
                             "SQ = (sum of the matched IoUs) / TP (0 without a TP)", "RQ = TP / (TP + FP/2 + FN/2)",
                             "each the mean over those classes of the class's value"]},
        """
        def panoptic_map(semantic, instance_masks, instance_classes, thing_classes):
            height, width = semantic.shape
            out = torch.zeros(height, width, dtype=torch.int64)
            for i in range(height):
                for j in range(width):
                    owner = None
                    for k in range(len(instance_masks)):
                        if instance_masks[k][i, j]:
                            owner = k  # a later instance is drawn over an earlier one
                    cls = int(semantic[i, j])
                    if owner is not None:
                        out[i, j] = int(instance_classes[owner]) * 1000 + owner + 1
                    elif cls in [int(c) for c in thing_classes]:
                        out[i, j] = -1
                    else:
                        out[i, j] = cls * 1000
            return out

        def panoptic_quality(pred, truth):
            void = truth == -1
            pred_ids = [int(i) for i in pred.unique() if int(i) != -1]
            true_ids = [int(i) for i in truth[~void].unique()]

            def iou(p, t):  # on the non-void pixels only
                a, b = (pred == p) & ~void, truth == t
                return float((a & b).sum()) / float((a | b).sum())

            matches = [(p, t, iou(p, t)) for p in pred_ids for t in true_ids if p // 1000 == t // 1000 and iou(p, t) > 0.5]
            rows = {}

            def row(cls):
                return rows.setdefault(cls, {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0})

            for p, t, value in matches:
                row(p // 1000)["tp"] += 1
                row(p // 1000)["iou"] += value
            for t in true_ids:
                if t not in {m[1] for m in matches}:
                    row(t // 1000)["fn"] += 1
            for p in pred_ids:
                if p not in {m[0] for m in matches}:
                    pixels, on_void = int((pred == p).sum()), int(((pred == p) & void).sum())
                    if not on_void > pixels / 2:
                        row(p // 1000)["fp"] += 1
            values = []
            for r in rows.values():
                if r["tp"] + r["fp"] + r["fn"] == 0:
                    continue
                sq = r["iou"] / r["tp"] if r["tp"] else 0.0
                rq = r["tp"] / (r["tp"] + r["fp"] / 2 + r["fn"] / 2)
                values.append((sq * rq, sq, rq))
            if not values:
                return (math.nan, math.nan, math.nan)
            return tuple(sum(v[k] for v in values) / len(values) for k in range(3))
        """),
    "t2_unet": ({
        "mask_boundary": ["at least one of their four neighbours (up, down, left, right)\n    outside the mask",
                          "A neighbour beyond the image edge counts as inside"],
        "boundary_f1": ["at most ``tolerance`` rows and at most\n    ``tolerance`` columns away",
                        "Precision = correct predicted\n    boundary pixels / predicted boundary pixels",
                        "F1 = 2·precision·recall / (precision + recall), 0.0 when both are 0",
                        "1.0 when neither map has a boundary pixel, 0.0 when only one of them has"]},
        """
        def mask_boundary(mask):
            height, width = mask.shape
            out = torch.zeros_like(mask)
            for i in range(height):
                for j in range(width):
                    if not mask[i, j]:
                        continue
                    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                        y, x = i + di, j + dj
                        inside = not (0 <= y < height and 0 <= x < width) or bool(mask[y, x])
                        if not inside:
                            out[i, j] = True
            return out

        def boundary_f1(pred_boundary, true_boundary, tolerance):
            predicted, true = pred_boundary.nonzero().tolist(), true_boundary.nonzero().tolist()
            if not predicted and not true:
                return 1.0
            if not predicted or not true:
                return 0.0

            def near(point, others):
                return any(abs(point[0] - o[0]) <= tolerance and abs(point[1] - o[1]) <= tolerance for o in others)

            precision = sum(near(p, true) for p in predicted) / len(predicted)
            recall = sum(near(t, predicted) for t in true) / len(true)
            return 0.0 if precision == 0 and recall == 0 else 2 * precision * recall / (precision + recall)
        """),
    "t3_roi_align": ({
        "roi_align_one": ["aligned=True shifts each by -0.5 first", "cut into output_size x output_size equal bins",
                          "``start + (index + (s + 0.5) / sampling_ratio) * bin_size``",
                          "a bin's value is\n            the mean of its sampling_ratio**2 samples"],
        "mask_head_loss": ["each RoI's *labelled* (ground-truth) class's mask only, averaged over all N·M·M pixels"],
        "bilinear_sample": ["zeros when\n    y < -1 or y > H or x < -1 or x > W", "y is clamped to [0, H-1] and x to [0, W-1]",
                            "(1 - dy)(1 - dx), (1 - dy)dx, dy(1 - dx) and dy·dx"]},
        """
        def bilinear_sample(feature, y, x):
            channels, height, width = feature.shape
            if y < -1 or y > height or x < -1 or x > width:
                return torch.zeros(channels)
            y, x = min(max(y, 0.0), height - 1.0), min(max(x, 0.0), width - 1.0)
            top, left = math.floor(y), math.floor(x)
            bottom, right = min(top + 1, height - 1), min(left + 1, width - 1)
            dy, dx = y - top, x - left
            return ((1 - dy) * (1 - dx) * feature[:, top, left] + (1 - dy) * dx * feature[:, top, right]
                    + dy * (1 - dx) * feature[:, bottom, left] + dy * dx * feature[:, bottom, right])

        def roi_align_one(feature, box, output_size, sampling_ratio):
            x1, y1, x2, y2 = (float(v) - 0.5 for v in box)
            bin_h, bin_w = (y2 - y1) / output_size, (x2 - x1) / output_size
            out = torch.zeros(feature.shape[0], output_size, output_size)
            for row in range(output_size):
                for col in range(output_size):
                    samples = []
                    for sy in range(sampling_ratio):
                        for sx in range(sampling_ratio):
                            y = y1 + (row + (sy + 0.5) / sampling_ratio) * bin_h
                            x = x1 + (col + (sx + 0.5) / sampling_ratio) * bin_w
                            samples.append(bilinear_sample(feature, y, x))
                    out[:, row, col] = sum(samples) / sampling_ratio**2
            return out

        def mask_head_loss(mask_logits, labels, targets):
            total, count = 0.0, 0
            for roi in range(mask_logits.shape[0]):
                logits = mask_logits[roi, int(labels[roi])]
                p = torch.sigmoid(logits.double())
                t = targets[roi].double()
                total = total + (-(t * torch.log(p) + (1 - t) * torch.log(1 - p))).sum()
                count += logits.numel()
            return total / count
        """),
    "t4_losses": ({
        "sigmoid_focal_loss": ["p_t = p for a positive and 1 - p for a\n    negative",
                               "the binary cross-entropy -log(p_t) times the modulating factor (1 - p_t)**gamma times alpha_t",
                               "(alpha for a positive, 1 - alpha for a negative); then the mean over all elements"],
        "binary_tversky_loss": ["the soft counts TP, FP and FN are summed over all elements",
                                "the Dice ratio TP / (TP + FP/2 + FN/2) with the two halves replaced by alpha\n    (on FP) and beta (on FN)",
                                "eps added to its numerator and to its denominator"]},
        """
        def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
            p = torch.sigmoid(logits.double())
            positive = targets == 1
            p_t = torch.where(positive, p, 1 - p)
            alpha_t = torch.where(positive, torch.full_like(p, alpha), torch.full_like(p, 1 - alpha))
            return (-torch.log(p_t) * (1 - p_t) ** gamma * alpha_t).mean()

        def binary_tversky_loss(logits, targets, alpha=0.5, beta=0.5, eps=1.0):
            p, t = torch.sigmoid(logits), targets.float()
            tp, fp, fn = (p * t).sum(), (p * (1 - t)).sum(), ((1 - p) * t).sum()
            index = (tp + eps) / (tp + alpha * fp + beta * fn + eps)
            return 1 - index
        """),
    "t5_atrous": ({
        "receptive_field": ["A dilated kernel spans (kernel_size - 1) * dilation + 1 positions of its own input",
                            "a layer widens the field by (kernel_size - 1) * dilation * jump",
                            "the product\n        of the strides of the layers before it"],
        "empirical_receptive_field": ["back-propagate the centre output pixel (row\n    out_height // 2, column out_width // 2)",
                                      "the number of input rows\n    from the first to the last row that holds a non-zero gradient, both included"]},
        """
        def receptive_field(layers):
            field, strides_before = 1, []
            for kernel_size, dilation, stride in layers:
                jump = math.prod(strides_before)
                field += ((kernel_size - 1) * dilation + 1 - 1) * jump
                strides_before.append(stride)
            return field

        def empirical_receptive_field(model, size=65):
            image = torch.zeros(1, 1, size, size, requires_grad=True)
            out = model(image)
            out_height, out_width = out.shape[2], out.shape[3]
            out[0, 0, out_height // 2, out_width // 2].backward()
            rows = [r for r in range(size) if bool((image.grad[0, 0, r] != 0).any())]
            return rows[-1] - rows[0] + 1
        """),
    "t6_metrics": ({
        "iou_and_dice": ["Per-class IoU ``TP / (TP + FP + FN)`` and Dice ``2TP / (2TP + FP + FN)``",
                         "NaN for classes with TP + FP + FN = 0"],
        "mask_ap": ["Go through the predictions by decreasing score", "among the true masks not\n    matched yet, the one it overlaps most",
                    "recall = TP / G and precision = TP / (number of predictions so far)",
                    "AP is the mean over the 101 recall levels\n    r = 0, 0.01, ..., 1 of the highest precision reached at any point whose recall is >= r",
                    "Mask IoU = |A and B| / |A or B| in pixels"]},
        """
        def iou_and_dice(confusion):
            k = confusion.shape[0]
            iou, dice = torch.zeros(k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
            for c in range(k):
                tp = int(confusion[c, c])
                fp = int(confusion[:, c].sum()) - tp
                fn = int(confusion[c, :].sum()) - tp
                if tp + fp + fn == 0:
                    iou[c] = dice[c] = math.nan
                else:
                    iou[c], dice[c] = tp / (tp + fp + fn), 2 * tp / (2 * tp + fp + fn)
            return iou, dice

        def mask_ap(pred_masks, scores, true_masks, iou_threshold):
            order = sorted(range(len(scores)), key=lambda i: float(scores[i]), reverse=True)
            unmatched, tp, points = list(range(len(true_masks))), 0, []
            for n, i in enumerate(order, start=1):
                overlaps = [(int((pred_masks[i] & true_masks[g]).sum()) / max(int((pred_masks[i] | true_masks[g]).sum()), 1), g)
                            for g in unmatched]
                if overlaps:
                    best_iou, best = max(overlaps)
                    if best_iou >= iou_threshold:
                        unmatched.remove(best)
                        tp += 1
                points.append((tp / len(true_masks), tp / n))  # (recall, precision)
            total = 0.0
            for level in range(101):
                r = level / 100
                reached = [precision for recall, precision in points if recall >= r]
                total += max(reached) if reached else 0.0
            return total / 101
        """),
    "t7_sam": ({
        "fourier_point_encoding": ["map each coordinate from\n    [0, 1] to [-1, 1] (2p - 1)",
                                   "project the point onto the F columns of ``frequencies``, multiply by 2*pi",
                                   "the sines of the F angles followed by their cosines"],
        "stability_score": ["the IoU of the two binary masks ``logits > offset`` and ``logits > -offset``",
                            "1.0 for a candidate whose two masks are both empty"],
        "plausible_masks": ["predicted IoU is at least\n    ``iou_threshold`` and whose stability score is at least ``stability_threshold``",
                            "in decreasing order of\n        predicted IoU (equal scores: the lower index first)"]},
        """
        def fourier_point_encoding(points, frequencies):
            rows = []
            for point in points:
                centred = [2 * float(v) - 1 for v in point]
                angles = [2 * math.pi * (centred[0] * float(frequencies[0, f]) + centred[1] * float(frequencies[1, f]))
                          for f in range(frequencies.shape[1])]
                rows.append([math.sin(a) for a in angles] + [math.cos(a) for a in angles])
            return torch.tensor(rows)

        def stability_score(mask_logits, offset=1.0):
            scores = []
            for logits in mask_logits:
                strict, loose = logits > offset, logits > -offset
                union = int((strict | loose).sum())
                scores.append(1.0 if union == 0 else int((strict & loose).sum()) / union)
            return torch.tensor(scores)

        def plausible_masks(mask_logits, predicted_iou, stability, iou_threshold=0.88, stability_threshold=0.95):
            kept = [k for k in range(len(predicted_iou))
                    if float(predicted_iou[k]) >= iou_threshold and float(stability[k]) >= stability_threshold]
            kept.sort(key=lambda k: -float(predicted_iou[k]))  # a stable sort keeps the lower index first on ties
            return torch.stack([mask_logits[k] > 0 for k in kept]) if kept else \\
                torch.zeros((0, *mask_logits.shape[1:]), dtype=torch.bool)
        """),
    "t8_upsampling": ({
        "transposed_conv_coverage": ["input\n    position i is written, through the kernel, onto outputs i * stride, ..., i * stride + kernel_size - 1",
                                     "list of ints of length ``(length - 1) * stride + kernel_size``"],
        "upsampler_parameters": ["``\"transposed\"`` (ConvTranspose2d, kernel 2, with bias)",
                                 "``\"bilinear+conv\"`` (bilinear, then a 3x3\n    conv with bias)",
                                 "``\"pixelshuffle\"`` (3x3 conv to 4 * out_channels with bias, then PixelShuffle(2))"]},
        """
        def transposed_conv_coverage(kernel_size, stride, length):
            out = [0 for _ in range((length - 1) * stride + kernel_size)]
            for i in range(length):
                for position in range(i * stride, i * stride + kernel_size):
                    out[position] += 1
            return out

        def upsampler_parameters(in_channels, out_channels):
            transposed = in_channels * out_channels * 2 * 2 + out_channels
            bilinear = in_channels * out_channels * 3 * 3 + out_channels
            shuffle = in_channels * (4 * out_channels) * 3 * 3 + 4 * out_channels  # PixelShuffle has no weights
            return {"transposed": transposed, "bilinear+conv": bilinear, "pixelshuffle": shuffle}
        """),
    "t9_imbalance": ({
        "median_frequency_weights": ["freq(c) = (pixels of class c in all masks) / (pixels of the masks in which class c occurs at least once)",
                                     "median_freq is the median of freq over the classes that occur (for an even number of classes, the mean of the\n    two middle values)",
                                     "Pixels equal to ``ignore_index`` count nowhere",
                                     "A class that never occurs gets 0"],
        "ohem_keep_mask": ["True for the ``round(keep_fraction * numel)`` largest losses (at least one)"]},
        """
        def median_frequency_weights(masks, num_classes, ignore_index=255):
            counted = [[int(v) for v in mask.flatten() if int(v) != ignore_index] for mask in masks]
            freq = {}
            for c in range(num_classes):
                holding = [pixels for pixels in counted if c in pixels]
                if holding:
                    freq[c] = sum(pixels.count(c) for pixels in holding) / sum(len(pixels) for pixels in holding)
            ordered = sorted(freq.values())
            n = len(ordered)
            median = (ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2) if n else 0.0
            return torch.tensor([median / freq[c] if c in freq else 0.0 for c in range(num_classes)], dtype=torch.float32)

        def ohem_keep_mask(pixel_losses, keep_fraction):
            count = max(1, round(keep_fraction * pixel_losses.numel()))
            largest = sorted(pixel_losses.flatten().tolist(), reverse=True)[:count]
            return pixel_losses >= min(largest)
        """),
    "t10_segformer": ({
        "attention_flops": ["keys and values are the token grid shrunk\n    ``sr_ratio`` times per side, N / sr_ratio**2 tokens",
                            "A multiply-add counts as 2 FLOPs", "the softmax and the scaling are not counted"],
        "reduced_attention": ["token i is at row i // width,\n    column i % width",
                              "averaged over non-overlapping ``sr_ratio x sr_ratio`` blocks",
                              "``softmax(Q @ K^T / sqrt(C)) @ V``, the softmax over the keys"],
        "depthwise_conv3x3": ["with zero padding (every position outside the image holds 0)",
                              "``out[c, i, j] = sum over a, b in {0, 1, 2} of weight[c, a, b] * x[c, i + a - 1, j + b - 1]``"]},
        """
        def attention_flops(num_tokens, dim, sr_ratio):
            keys = num_tokens // sr_ratio**2
            scores = num_tokens * keys * dim  # multiply-adds of Q @ K^T: (N x dim) by (dim x keys)
            mixing = num_tokens * dim * keys  # multiply-adds of A @ V: (N x keys) by (keys x dim)
            return 2 * scores + 2 * mixing

        def reduced_attention(tokens, height, width, sr_ratio):
            n, c = tokens.shape
            blocks = []
            for by in range(height // sr_ratio):
                for bx in range(width // sr_ratio):
                    members = [(by * sr_ratio + dy) * width + bx * sr_ratio + dx
                               for dy in range(sr_ratio) for dx in range(sr_ratio)]
                    blocks.append(tokens[members].mean(0))
            keys = torch.stack(blocks)
            scores = tokens @ keys.t() / math.sqrt(c)
            weights = torch.exp(scores - scores.max(1, keepdim=True).values)
            weights = weights / weights.sum(1, keepdim=True)
            return weights @ keys

        def depthwise_conv3x3(x, weight):
            channels, height, width = x.shape
            out = torch.zeros(channels, height, width)
            for c in range(channels):
                for i in range(height):
                    for j in range(width):
                        total = 0.0
                        for a in range(3):
                            for b in range(3):
                                y, z = i + a - 1, j + b - 1
                                if 0 <= y < height and 0 <= z < width:  # zero padding outside
                                    total += float(weight[c, a, b]) * float(x[c, y, z])
                        out[c, i, j] = total
            return out
        """),
}


def docstrings(cell: str) -> dict[str, str]:
    tree = ast.parse(CELLS[cell].source)
    return {node.name: ast.get_docstring(node, clean=False) or "" for node in tree.body if isinstance(node, ast.FunctionDef)}


def visible_part(cell: str) -> str:
    source = CELLS[f"test_{cell}"].source
    for region in hidden_regions(source):
        source = source.replace(region, "")
    return source


def run_visible(cell: str, solution: str) -> None:
    """Runs the cell's solution, then its visible test cell, in a fresh namespace (the notebook's names)."""
    namespace = {"torch": torch, "F": F, "nn": nn, "math": math}
    exec(textwrap.dedent(solution), namespace)
    exec(visible_part(cell), namespace)


def test_every_graded_function_has_a_literal_implementation():
    graded = {(cell, name) for cell, name in BUGS}
    literal = {(cell, name) for cell, (phrases, _) in LITERAL.items() for name in phrases if name != "bilinear_sample"}
    assert literal == graded


@pytest.mark.parametrize("cell", TOPICS)
def test_the_docstrings_still_say_what_the_literal_implementations_follow(cell):
    phrases, _ = LITERAL[cell]
    found = docstrings(cell)
    for function, wanted in phrases.items():
        for phrase in wanted:
            assert " ".join(phrase.split()) in " ".join(found[function].split()), f"{function}: {phrase!r}"


@pytest.mark.parametrize("cell", TOPICS)
def test_the_docstrings_literal_words_earn_every_point(cell):
    result = judge(cell, LITERAL[cell][1])
    assert result.fraction == 1.0, result.message


@pytest.mark.parametrize("cell", TOPICS)
def test_the_visible_check_passes_on_every_correct_implementation(cell, capsys):
    for solution in (reference_cell(cell), *ALTERNATIVES[cell], LITERAL[cell][1]):
        run_visible(cell, solution)
    assert capsys.readouterr().out.count("visible checks passed") == 4


@pytest.mark.parametrize("cell, function", sorted(BUGS), ids=lambda v: str(v))
def test_the_visible_check_fails_on_every_planted_bug(cell, function):
    """What the hidden check takes points for, the visible check catches first (on its smaller inputs)."""
    source = reference_cell(cell)
    for old, new in BUGS[cell, function]:
        source = source.replace(old, new)
    with pytest.raises(AssertionError):
        run_visible(cell, source)


@pytest.mark.parametrize("cell, function, bug", sorted(EDGE_BUGS), ids=lambda v: str(v))
def test_the_visible_check_fails_on_every_bug_at_an_edge_of_the_docstring(cell, function, bug):
    """The edges the hidden check grades (a threshold met exactly, a box off the map, a fraction that rounds to no
    pixel, ...) are in the visible check too."""
    with pytest.raises(AssertionError):
        run_visible(cell, with_bug(cell, EDGE_BUGS[cell, function, bug]))


def test_course_lib_states_no_graded_parameter_count():
    """``upsampler_parameters`` asks for the parameter counts of course_lib's three upsampling blocks: the library
    students install may hold the blocks, never the counts written out (its docstring once gave all three)."""
    import re

    for path in (REPO / "course_lib").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\d+\s*[·*×]\s*c_?in\w*\s*[·*×]\s*c_?out", text), path


def test_the_visible_checks_compute_no_answer_in_front_of_the_student():
    """No oracle in the code of a visible cell (its comments and messages may name them): no torchvision,
    torchmetrics or course_lib, no FLOP counter, no attention, pooling, convolution or RoI operation that is the
    answer itself; stored values and properties only."""
    forbidden = {"torchvision", "torchmetrics", "course_lib", "losses", "metrics", "models", "FlopCounterMode",
                 "scaled_dot_product_attention", "avg_pool2d", "conv2d", "conv_transpose1d", "ConvTranspose1d",
                 "ConvTranspose2d", "roi_align", "unfold", "sigmoid_focal_loss_"}
    for cell in TOPICS:
        tree = ast.parse(visible_part(cell))
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        used |= {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in node.names}
        used |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not used & forbidden, f"test_{cell} computes with {sorted(used & forbidden)}"
