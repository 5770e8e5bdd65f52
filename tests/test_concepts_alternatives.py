"""Assignment 2's checks in both directions, for every graded function: two correct implementations written
differently from the reference (other names, other torch ops, helpers inside the cell) earn every point, and a bug
planted in one function loses that function's points only (partial credit per part).

Each cell goes through the real probes (``segmentation_concepts_probes``, here in the test's process instead of the
sandbox) and the real verdicts with the grader's inputs; the sandboxed path is covered by ``test_concepts.py``.
"""

import math
import re
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.assignment import CheckContext
from autograder.checks import segmentation_concepts_probes as probes
from autograder.judge import CheckResult, run_check
from autograder.checks.segmentation_concepts import ASSIGNMENT, CHECKS, TOPICS, make_inputs
from notebooks import REPO

REFERENCE = (REPO / "autograder" / "reference" / "segmentation_concepts.py").read_text()
INPUTS = make_inputs()


def reference_cell(cell: str) -> str:
    return REFERENCE.split(f"# BEGIN {cell}\n")[1].split(f"# END {cell}")[0]


def judge(cell: str, source: str) -> CheckResult:
    """The verdict on ``source`` as ``cell``: the fraction of its points, the message, each part's result."""
    source = textwrap.dedent(source)
    namespace = {"torch": torch, "nn": nn, "F": F, "math": math}  # the sandbox's preamble
    topic = cell.split("_")[0]
    try:
        exec(source, namespace)
        with torch.no_grad() if topic != "t5" else torch.enable_grad():
            observations = {topic: probes.PROBES[topic](namespace, INPUTS[topic])}
    except Exception as err:
        observations = {topic: {"error": f"{type(err).__name__}: {err}"}}
    check = f"test_{cell}"
    return run_check(check, CHECKS[check], observations, CheckContext(cells={cell: source}, inputs=INPUTS))


ALTERNATIVES = {  # cell: two correct implementations, unlike the reference and unlike each other
    "t1_panoptic": [
        """
        def panoptic_map(semantic, instance_masks, instance_classes, thing_classes):
            things = torch.isin(semantic, torch.as_tensor(list(thing_classes), dtype=semantic.dtype))
            result = torch.where(things, torch.full_like(semantic, -1, dtype=torch.long), semantic.long() * 1000)
            for k in range(instance_masks.shape[0]):
                result = torch.where(instance_masks[k], int(instance_classes[k]) * 1000 + k + 1, result)
            return result

        def panoptic_quality(pred, truth):
            from collections import Counter

            p, t = pred.reshape(-1).long(), truth.reshape(-1).long()
            valid = t != -1
            ids, areas = torch.unique(p, return_counts=True)
            valid_area = {int(i): int((p[valid] == i).sum()) for i in ids if int(i) != -1}
            mostly_void = {int(i) for i, a in zip(ids, areas) if int(i) != -1 and 2 * valid_area[int(i)] < int(a)}
            true_ids, true_areas = torch.unique(t[valid], return_counts=True)
            true_area = dict(zip(true_ids.tolist(), true_areas.tolist()))
            pairs, overlaps = torch.unique(torch.stack([p[valid], t[valid]]), dim=1, return_counts=True)
            tp, fp, fn, iou_sum, hit_p, hit_t = Counter(), Counter(), Counter(), Counter(), set(), set()
            for (a, b), n in zip(pairs.t().tolist(), overlaps.tolist()):
                if a == -1 or a // 1000 != b // 1000:
                    continue
                iou = n / (valid_area[a] + true_area[b] - n)
                if iou > 0.5:
                    hit_p.add(a), hit_t.add(b)
                    tp[a // 1000] += 1
                    iou_sum[a // 1000] += iou
            for a in valid_area:
                if a not in mostly_void and a not in hit_p:
                    fp[a // 1000] += 1
            for b in true_area:
                if b not in hit_t:
                    fn[b // 1000] += 1
            classes = set(tp) | set(fp) | set(fn)
            if not classes:
                return math.nan, math.nan, math.nan
            sq = [iou_sum[c] / tp[c] if tp[c] else 0.0 for c in classes]
            rq = [tp[c] / (tp[c] + 0.5 * fp[c] + 0.5 * fn[c]) for c in classes]
            n = len(classes)
            return sum(s * r for s, r in zip(sq, rq)) / n, sum(sq) / n, sum(rq) / n
        """,
        """
        def _stuff_or_void(label, things):
            return -1 if label in things else label * 1000

        def panoptic_map(semantic, instance_masks, instance_classes, thing_classes):
            things = {int(c) for c in thing_classes}
            lookup = torch.tensor([_stuff_or_void(v, things) for v in range(int(semantic.max()) + 1)], dtype=torch.int64)
            out = lookup[semantic.long()]
            for number, (mask, cls) in enumerate(zip(instance_masks, instance_classes.tolist()), start=1):
                out[mask.bool()] = cls * 1000 + number
            return out

        def _segments(m, keep):
            return {int(i): (m == i) & keep for i in m.unique() if int(i) != -1}

        def panoptic_quality(pred, truth):
            valid = truth != -1
            true_segments = _segments(truth, valid)
            whole = _segments(pred, torch.ones_like(valid))
            per_class = {}
            for c in {i // 1000 for i in [*whole, *true_segments]}:
                ps = {i: m for i, m in whole.items() if i // 1000 == c}
                ts = [m for i, m in true_segments.items() if i // 1000 == c]
                matched, ious = set(), []
                for i, pm in ps.items():
                    for tm in ts:
                        iou = (pm & tm).sum().item() / ((pm & valid) | tm).sum().item()
                        if iou > 0.5:
                            matched.add(i)
                            ious.append(iou)
                unmatched = [pm for i, pm in ps.items() if i not in matched]
                tp, fn = len(ious), len(ts) - len(ious)
                fp = sum(1 for pm in unmatched if pm.sum() >= 2 * (pm & ~valid).sum())  # mostly void: ignored
                if tp + fp + fn == 0:
                    continue
                sq = sum(ious) / tp if tp else 0.0
                rq = tp / (tp + (fp + fn) / 2)
                per_class[c] = (sq * rq, sq, rq)
            if not per_class:
                return float("nan"), float("nan"), float("nan")
            return tuple(sum(v[k] for v in per_class.values()) / len(per_class) for k in range(3))
        """],
    "t2_unet": [
        """
        def mask_boundary(mask):
            inner = mask.clone()
            inner[1:, :] &= mask[:-1, :]
            inner[:-1, :] &= mask[1:, :]
            inner[:, 1:] &= mask[:, :-1]
            inner[:, :-1] &= mask[:, 1:]
            return mask & ~inner

        def _dilate(edges, radius):
            grown = edges.clone()
            h, w = edges.shape
            ry, rx = min(radius, h - 1), min(radius, w - 1)  # a shift beyond the image moves nothing in
            for dy in range(-ry, ry + 1):
                for dx in range(-rx, rx + 1):
                    shifted = torch.zeros_like(edges)
                    shifted[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
                        edges[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
                    grown |= shifted
            return grown

        def boundary_f1(pred_boundary, true_boundary, tolerance):
            if not pred_boundary.any() and not true_boundary.any():
                return 1.0
            if not pred_boundary.any() or not true_boundary.any():
                return 0.0
            p = (pred_boundary & _dilate(true_boundary, tolerance)).float().mean() / pred_boundary.float().mean()
            r = (true_boundary & _dilate(pred_boundary, tolerance)).float().mean() / true_boundary.float().mean()
            return float(2 * p * r / (p + r)) if p + r > 0 else 0.0
        """,
        """
        def mask_boundary(mask):
            padded = F.pad(mask.float()[None, None], (1, 1, 1, 1), mode="replicate")
            cross = torch.tensor([[0., 1, 0], [1, 1, 1], [0, 1, 0]])[None, None]
            return mask & (F.conv2d(padded, cross)[0, 0] < 5)  # interior: the whole cross lies inside

        def boundary_f1(pred_boundary, true_boundary, tolerance):
            pred_points, true_points = pred_boundary.nonzero().float(), true_boundary.nonzero().float()
            if len(pred_points) == 0 or len(true_points) == 0:
                return float(len(pred_points) == len(true_points))
            distance = torch.cdist(pred_points, true_points, p=float("inf"))  # Chebyshev distance between points
            precision = (distance.min(dim=1).values <= tolerance).float().mean()
            recall = (distance.min(dim=0).values <= tolerance).float().mean()
            return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))
        """],
    "t3_roi_align": [
        """
        def _interp(feature, ys, xs):
            c, h, w = feature.shape
            outside = (ys < -1) | (ys > h) | (xs < -1) | (xs > w)
            ys, xs = ys.clamp(0, h - 1), xs.clamp(0, w - 1)
            y0, x0 = ys.floor().long(), xs.floor().long()
            y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
            wy, wx = ys - y0, xs - x0
            val = (feature[:, y0, x0] * (1 - wy) * (1 - wx) + feature[:, y0, x1] * (1 - wy) * wx
                   + feature[:, y1, x0] * wy * (1 - wx) + feature[:, y1, x1] * wy * wx)
            return torch.where(outside, torch.zeros_like(val), val)

        def roi_align_one(feature, box, output_size, sampling_ratio):
            x1, y1, x2, y2 = (float(v) - 0.5 for v in box)
            n, s = output_size, sampling_ratio
            offsets = (torch.arange(n * s, dtype=feature.dtype) + 0.5) / s  # in bins
            gy, gx = torch.meshgrid(y1 + offsets * (y2 - y1) / n, x1 + offsets * (x2 - x1) / n, indexing="ij")
            samples = _interp(feature, gy.flatten(), gx.flatten())
            return samples.view(-1, n, s, n, s).mean(dim=(2, 4))

        def mask_head_loss(mask_logits, labels, targets):
            index = labels.view(-1, 1, 1, 1).expand(-1, 1, *mask_logits.shape[-2:])
            chosen = mask_logits.gather(1, index).squeeze(1)
            return F.binary_cross_entropy_with_logits(chosen, targets.float(), reduction="mean")
        """,
        """
        def roi_align_one(feature, box, output_size, sampling_ratio):
            C, H, W = feature.shape
            left, top, right, bottom = [float(b) - 0.5 for b in box]
            step_y = (bottom - top) / (output_size * sampling_ratio)
            step_x = (right - left) / (output_size * sampling_ratio)

            def sample(y, x):
                if not (-1 <= y <= H and -1 <= x <= W):
                    return torch.zeros(C, dtype=feature.dtype)
                y, x = min(max(y, 0.0), H - 1.0), min(max(x, 0.0), W - 1.0)
                iy, ix = int(y), int(x)
                jy, jx = min(iy + 1, H - 1), min(ix + 1, W - 1)
                fy, fx = y - iy, x - ix
                upper = feature[:, iy, ix] + fx * (feature[:, iy, jx] - feature[:, iy, ix])
                lower = feature[:, jy, ix] + fx * (feature[:, jy, jx] - feature[:, jy, ix])
                return upper + fy * (lower - upper)

            rows = []
            for i in range(output_size):
                row = []
                for j in range(output_size):
                    points = [sample(top + (i * sampling_ratio + a + 0.5) * step_y,
                                     left + (j * sampling_ratio + b + 0.5) * step_x)
                              for a in range(sampling_ratio) for b in range(sampling_ratio)]
                    row.append(torch.stack(points).mean(0))
                rows.append(torch.stack(row, -1))
            return torch.stack(rows, -2)

        def mask_head_loss(mask_logits, labels, targets):
            per_roi = [F.binary_cross_entropy_with_logits(mask_logits[r, int(c)], targets[r].float(), reduction="sum")
                       for r, c in enumerate(labels)]
            return torch.stack(per_roi).sum() / targets.numel()
        """],
    "t4_losses": [
        """
        def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
            log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
            positive = -alpha * (1 - log_p.exp()) ** gamma * log_p
            negative = -(1 - alpha) * (1 - log_not_p.exp()) ** gamma * log_not_p
            return (targets * positive + (1 - targets) * negative).mean()

        def binary_tversky_loss(logits, targets, alpha=0.5, beta=0.5, eps=1.0):
            p, t = logits.sigmoid(), targets.float()
            tp = torch.sum(p * t)
            fp, fn = torch.sum(p) - tp, torch.sum(t) - tp
            return 1 - (tp + eps) / (tp + alpha * fp + beta * fn + eps)
        """,
        """
        def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
            ce = F.softplus(-logits) * targets + F.softplus(logits) * (1 - targets)
            p = torch.sigmoid(logits)
            is_positive = targets > 0.5
            p_t = torch.where(is_positive, p, 1 - p)
            weight = torch.where(is_positive, torch.full_like(p, alpha), torch.full_like(p, 1 - alpha))
            return torch.mean(weight * (1 - p_t).pow(gamma) * ce)

        def _soft_counts(p, t):
            p, t = p.reshape(-1), t.reshape(-1).to(p.dtype)
            return torch.dot(p, t), torch.dot(p, 1 - t), torch.dot(1 - p, t)

        def binary_tversky_loss(logits, targets, alpha=0.5, beta=0.5, eps=1.0):
            tp, fp, fn = _soft_counts(torch.sigmoid(logits), targets)
            return 1.0 - (tp + eps) / (tp + alpha * fp + beta * fn + eps)
        """],
    "t5_atrous": [
        """
        def receptive_field(layers):
            size, stride_product = 1, 1
            for k, d, s in layers:
                effective = d * (k - 1) + 1
                size += (effective - 1) * stride_product
                stride_product *= s
            return size

        def empirical_receptive_field(model, size=65):
            image = torch.randn(1, 1, size, size).requires_grad_()
            out = model(image)
            (grad,) = torch.autograd.grad(out[..., out.shape[-2] // 2, out.shape[-1] // 2].sum(), image)
            rows = grad[0, 0].abs().sum(dim=1).nonzero().flatten()
            return int(rows[-1] - rows[0] + 1)
        """,
        """
        def receptive_field(layers):
            r = 1  # walk back from one output pixel to the input
            for k, d, s in reversed(list(layers)):
                r = (r - 1) * s + d * (k - 1) + 1
            return r

        def empirical_receptive_field(model, size=65):
            x = torch.ones(1, 1, size, size, requires_grad=True)
            out = model(x)
            seed = torch.zeros_like(out)
            seed[0, 0, out.shape[2] // 2, out.shape[3] // 2] = 1
            out.backward(seed)
            touched = torch.arange(size)[(x.grad[0, 0] != 0).any(dim=1)]
            return int(touched.max() - touched.min()) + 1
        """],
    "t6_metrics": [
        """
        def iou_and_dice(confusion):
            c = confusion.to(torch.float64)
            inter = torch.diagonal(c)
            predicted, actual = c.sum(dim=0), c.sum(dim=1)
            iou = inter / (predicted + actual - inter)  # 0 / 0 is NaN for a class that never appears
            dice = 2 * inter / (predicted + actual)
            return iou, dice

        def mask_ap(pred_masks, scores, true_masks, iou_threshold):
            ranked = sorted(range(len(scores)), key=lambda k: -float(scores[k]))
            matched, flags = set(), []
            for k in ranked:
                best, best_iou = None, -1.0
                for g in range(true_masks.shape[0]):
                    if g in matched:
                        continue
                    inter = int((pred_masks[k] & true_masks[g]).sum())
                    union = int((pred_masks[k] | true_masks[g]).sum())
                    iou = inter / union if union else 0.0
                    if iou > best_iou:
                        best, best_iou = g, iou
                if best is not None and best_iou >= iou_threshold:
                    matched.add(best)
                    flags.append(True)
                else:
                    flags.append(False)
            precisions, recalls, hits = [], [], 0
            for n, flag in enumerate(flags, start=1):
                hits += flag
                precisions.append(hits / n)
                recalls.append(hits / true_masks.shape[0])
            for n in range(len(precisions) - 2, -1, -1):  # the precision envelope, from the right
                precisions[n] = max(precisions[n], precisions[n + 1])
            ap = 0.0
            for level in [k / 100 for k in range(101)]:
                ap += next((p for p, r in zip(precisions, recalls) if r >= level), 0.0)
            return ap / 101
        """,
        """
        def iou_and_dice(confusion):
            iou, dice = [], []
            for k in range(confusion.shape[0]):
                tp = float(confusion[k, k])
                fp, fn = float(confusion[:, k].sum()) - tp, float(confusion[k, :].sum()) - tp
                present = tp + fp + fn > 0
                iou.append(tp / (tp + fp + fn) if present else math.nan)
                dice.append(2 * tp / (2 * tp + fp + fn) if present else math.nan)
            return torch.tensor(iou), torch.tensor(dice)

        def _iou_matrix(a, b):
            inter = torch.einsum("phw,ghw->pg", a.float(), b.float())
            area_a, area_b = a.flatten(1).sum(1).float(), b.flatten(1).sum(1).float()
            return inter / (area_a[:, None] + area_b[None, :] - inter)

        def mask_ap(pred_masks, scores, true_masks, iou_threshold):
            ious = _iou_matrix(pred_masks[scores.argsort(descending=True)], true_masks)
            tp = []
            for row in ious:
                row = row.clone()
                g = int(row.argmax())
                tp.append(bool(row[g] >= iou_threshold))
                if tp[-1]:
                    ious[:, g] = -1.0  # that object is taken
            tp = torch.tensor(tp, dtype=torch.float64)
            hits = torch.cumsum(tp, 0)
            precision = hits / torch.arange(1, len(tp) + 1)
            recall = hits / len(true_masks)
            envelope = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])
            levels = torch.linspace(0, 1, 101, dtype=torch.float64)
            index = torch.searchsorted(recall, levels, side="left")
            padded = torch.cat([envelope, torch.zeros(1, dtype=torch.float64)])
            return float(padded[index].mean())
        """],
    "t7_sam": [
        """
        def fourier_point_encoding(points, frequencies):
            angles = torch.einsum("nd,df->nf", points * 2 - 1, frequencies) * (2 * math.pi)
            return torch.hstack((angles.sin(), angles.cos()))

        def stability_score(mask_logits, offset=1.0):
            flat = mask_logits.reshape(mask_logits.shape[0], -1)
            inner = (flat > offset).float().sum(dim=1)
            outer = (flat > -offset).float().sum(dim=1)
            score = inner / outer
            score[outer == 0] = 1.0
            return score

        def plausible_masks(mask_logits, predicted_iou, stability, iou_threshold=0.88, stability_threshold=0.95):
            candidates = [(-float(predicted_iou[k]), k) for k in range(len(predicted_iou))
                          if predicted_iou[k] >= iou_threshold and stability[k] >= stability_threshold]
            picked = [k for _, k in sorted(candidates)]  # best score first; ties by index
            return torch.stack([mask_logits[k] > 0 for k in picked]) if picked else \
                torch.zeros(0, *mask_logits.shape[1:], dtype=torch.bool)
        """,
        """
        def fourier_point_encoding(points, frequencies):
            centred = points.sub(0.5).mul(2)  # [0, 1] -> [-1, 1]
            z = torch.matmul(centred, frequencies).mul(2 * math.pi)
            e = torch.polar(torch.ones_like(z), z)  # sin and cos from one complex exponential
            return torch.cat([e.imag, e.real], dim=1)

        def _area(masks):
            return masks.flatten(1).count_nonzero(dim=1)

        def stability_score(mask_logits, offset=1.0):
            strict, loose = _area(mask_logits > offset), _area(~(mask_logits <= -offset))
            return torch.tensor([1.0 if b == 0 else a / b for a, b in zip(strict.tolist(), loose.tolist())])

        def plausible_masks(mask_logits, predicted_iou, stability, iou_threshold=0.88, stability_threshold=0.95):
            ok = torch.logical_and(predicted_iou >= iou_threshold, stability >= stability_threshold)
            index = torch.nonzero(ok).flatten()
            index = index[torch.sort(-predicted_iou[index], stable=True).indices]
            return torch.sign(mask_logits[index]) == 1
        """],
    "t8_upsampling": [
        """
        def transposed_conv_coverage(kernel_size, stride, length):
            out_len = (length - 1) * stride + kernel_size
            return [sum(1 for i in range(length) if 0 <= o - i * stride < kernel_size) for o in range(out_len)]

        def upsampler_parameters(in_channels, out_channels):
            def conv(cin, cout, k):
                return cin * cout * k * k + cout
            return {"transposed": conv(in_channels, out_channels, 2), "bilinear+conv": conv(in_channels, out_channels, 3),
                    "pixelshuffle": conv(in_channels, 4 * out_channels, 3)}
        """,
        """
        def transposed_conv_coverage(kernel_size, stride, length):
            y = F.conv_transpose1d(torch.ones(1, 1, length), torch.ones(1, 1, kernel_size), stride=stride)
            return [int(v) for v in y.flatten().round()]

        def upsampler_parameters(in_channels, out_channels):
            blocks = {
                "transposed": nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2),
                "bilinear+conv": nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"),
                                               nn.Conv2d(in_channels, out_channels, 3, padding=1)),
                "pixelshuffle": nn.Sequential(nn.Conv2d(in_channels, 4 * out_channels, 3, padding=1), nn.PixelShuffle(2)),
            }
            return {name: sum(p.numel() for p in block.parameters()) for name, block in blocks.items()}
        """],
    "t9_imbalance": [
        """
        def median_frequency_weights(masks, num_classes, ignore_index=255):
            pixels, exposure = torch.zeros(num_classes), torch.zeros(num_classes)
            for mask in masks:
                labels = mask[mask != ignore_index].long()
                counts = torch.bincount(labels, minlength=num_classes)[:num_classes].float()
                pixels += counts
                exposure += (counts > 0).float() * labels.numel()
            present = pixels > 0
            freq = pixels[present] / exposure[present]
            weights = torch.zeros(num_classes)
            weights[present] = torch.quantile(freq, 0.5) / freq
            return weights

        def ohem_keep_mask(pixel_losses, keep_fraction):
            k = max(1, round(keep_fraction * pixel_losses.numel()))
            threshold = pixel_losses.flatten().sort(descending=True).values[k - 1]
            return pixel_losses >= threshold
        """,
        """
        def median_frequency_weights(masks, num_classes, ignore_index=255):
            import statistics

            images = [[v for v in image.flatten().tolist() if v != ignore_index] for image in masks]
            freq = {}
            for c in range(num_classes):
                holding = [image for image in images if c in image]
                if holding:
                    freq[c] = sum(image.count(c) for image in holding) / sum(len(image) for image in holding)
            median = statistics.median(freq.values()) if freq else 0.0
            return torch.tensor([median / freq[c] if c in freq else 0.0 for c in range(num_classes)])

        def ohem_keep_mask(pixel_losses, keep_fraction):
            flat = pixel_losses.reshape(-1)
            count = max(1, int(round(flat.numel() * keep_fraction)))
            ranks = flat.argsort(descending=True).argsort()
            return (ranks < count).reshape(pixel_losses.shape)
        """],
    "t10_segformer": [
        """
        def attention_flops(num_tokens, dim, sr_ratio):
            reduced = num_tokens // (sr_ratio * sr_ratio)
            scores = 2 * num_tokens * dim * reduced  # Q @ K^T
            weighted = 2 * num_tokens * reduced * dim  # A @ V
            return scores + weighted

        def reduced_attention(tokens, height, width, sr_ratio):
            n, c = tokens.shape
            blocks = tokens.reshape(height // sr_ratio, sr_ratio, width // sr_ratio, sr_ratio, c)
            keys = blocks.mean(dim=(1, 3)).reshape(-1, c)  # one averaged token per block, row-major
            scores = tokens @ keys.T * c ** -0.5
            scores = scores - scores.max(dim=1, keepdim=True).values
            weights = scores.exp() / scores.exp().sum(dim=1, keepdim=True)
            return weights @ keys

        def depthwise_conv3x3(x, weight):
            return F.conv2d(x.unsqueeze(0), weight.unsqueeze(1), padding=1, groups=x.shape[0]).squeeze(0)
        """,
        """
        def _matmul_flops(n, k, m):
            return 2 * n * k * m

        def attention_flops(num_tokens, dim, sr_ratio):
            kv = num_tokens // sr_ratio ** 2
            return _matmul_flops(num_tokens, dim, kv) + _matmul_flops(num_tokens, kv, dim)

        def _pool(tokens, height, width, r):
            grid = tokens.view(height, width, -1).permute(2, 0, 1)  # (C, H, W)
            patches = F.unfold(grid[:, None], kernel_size=r, stride=r)  # (C, r*r, blocks)
            return patches.mean(dim=1).t()  # (blocks, C)

        def reduced_attention(tokens, height, width, sr_ratio):
            kv = _pool(tokens, height, width, sr_ratio)
            return F.scaled_dot_product_attention(tokens.unsqueeze(0), kv.unsqueeze(0), kv.unsqueeze(0)).squeeze(0)

        def depthwise_conv3x3(x, weight):
            channels, height, width = x.shape
            patches = F.unfold(x.unsqueeze(1), kernel_size=3, padding=1)  # (C, 9, H*W), zeros beyond the edge
            return torch.einsum("ck,ckp->cp", weight.reshape(channels, 9), patches).view(channels, height, width)
        """],
}

# One planted bug per graded function: (cell, function) -> [(text of the reference, replacement)].
BUGS = {
    ("t1_panoptic", "panoptic_map"): [("    panoptic[is_thing] = -1", "    pass")],
    ("t1_panoptic", "panoptic_quality"): [("if 2 * int((in_p & void).sum()) <= int(in_p.sum()):",
                                           "if True:")],  # a segment lying on void counted as a false positive
    ("t2_unet", "mask_boundary"): [('mode="replicate"', 'value=0.0')],  # the image edge drawn as an outline
    ("t2_unet", "boundary_f1"): [("(true_boundary & near(pred_boundary))", "(true_boundary & pred_boundary)")],
    ("t3_roi_align", "roi_align_one"): [("[float(v) - 0.5 for v in box]", "[float(v) for v in box]")],
    ("t3_roi_align", "mask_head_loss"): [("mask_logits[torch.arange(mask_logits.shape[0]), labels]", "mask_logits[:, 0]")],
    ("t4_losses", "sigmoid_focal_loss"): [("alpha_t = alpha * targets + (1 - alpha) * (1 - targets)", "alpha_t = alpha")],
    ("t4_losses", "binary_tversky_loss"): [("alpha * fp + beta * fn", "alpha * fn + beta * fp")],
    ("t5_atrous", "receptive_field"): [("field += (kernel - 1) * dilation * jump", "field += (kernel - 1) * dilation")],
    ("t5_atrous", "empirical_receptive_field"): [("touched[:, 0].min() + 1)", "touched[:, 0].min())")],
    ("t6_metrics", "iou_and_dice"): [("iou = torch.where(tp + fp + fn > 0, tp / (tp + fp + fn).clamp(min=1), nan)",
                                      "iou = tp / (tp + fp + fn).clamp(min=1)")],
    ("t6_metrics", "mask_ap"): [("free[best], hits[i] = False, 1.0", "hits[i] = 1.0")],  # an object matched twice
    ("t7_sam", "fourier_point_encoding"): [("2 * math.pi * (2 * points - 1) @ frequencies",
                                            "2 * math.pi * points @ frequencies")],  # SAM's [-1, 1] mapping forgotten
    ("t7_sam", "stability_score"): [("high / low.clamp(min=1)", "high / mask_logits[0].numel()")],
    ("t7_sam", "plausible_masks"): [("descending=True, stable=True", "descending=False, stable=True")],
    ("t8_upsampling", "transposed_conv_coverage"): [("coverage[i * stride + k] += 1", "coverage[i + k] += 1")],
    ("t8_upsampling", "upsampler_parameters"): [("9 * in_channels * out_channels * 4 + out_channels * 4",
                                                 "9 * in_channels * out_channels + out_channels")],
    ("t9_imbalance", "median_frequency_weights"): [("counts.sum(0)[occurs] / exposure[occurs]",
                                                    "counts.sum(0)[occurs] / image_pixels.sum()")],  # share of all pixels
    ("t9_imbalance", "ohem_keep_mask"): [("flat.topk(k).indices", "flat.topk(k, largest=False).indices")],
    ("t10_segformer", "attention_flops"): [("keys = num_tokens // sr_ratio**2", "keys = num_tokens // sr_ratio")],
    ("t10_segformer", "reduced_attention"): [("tokens.t().reshape(1, channels, height, width)",
                                               "tokens.reshape(1, channels, height, width)")],
    ("t10_segformer", "depthwise_conv3x3"): [("F.pad(x, (1, 1, 1, 1))", 'F.pad(x, (1, 1, 1, 1), mode="replicate")')],
}


def graded_functions(cell: str) -> list[str]:
    return re.findall(r"^def (\w+)\(", reference_cell(cell), flags=re.M)


def test_every_graded_function_has_two_alternatives_and_a_planted_bug():
    assert set(ALTERNATIVES) == set(TOPICS) and all(len(v) == 2 for v in ALTERNATIVES.values())
    graded = {(cell, name) for cell in TOPICS for name in graded_functions(cell) if name != "bilinear_sample"}
    assert set(BUGS) == graded


@pytest.mark.parametrize("cell", TOPICS)
def test_the_reference_earns_every_point_and_its_parts_add_up_to_the_declared_points(cell):
    result = judge(cell, reference_cell(cell))
    assert result.fraction == 1.0, result.message
    assert not result.parts or sum(p.max_points for p in result.parts) == ASSIGNMENT.points[f"test_{cell}"], result.parts


@pytest.mark.parametrize("cell, index", [(c, i) for c in TOPICS for i in range(2)], ids=lambda v: str(v))
def test_correct_implementations_written_differently_earn_every_point(cell, index):
    result = judge(cell, ALTERNATIVES[cell][index])
    assert result.fraction == 1.0, result.message


@pytest.mark.parametrize("cell, function", sorted(BUGS), ids=lambda v: str(v))
def test_a_bug_in_one_function_loses_that_functions_points_only(cell, function):
    source = reference_cell(cell)
    for old, new in BUGS[cell, function]:
        assert old in source, f"the planted bug no longer applies to the reference: {old!r}"
        source = source.replace(old, new)
    result = judge(cell, source)
    if not result.parts:  # a cell with one graded function: all or nothing
        assert result.fraction == 0.0, result.message
        return
    parts = {part.name: part for part in result.parts}
    assert {name for name, part in parts.items() if part.points == 0} == {function}, result.message
    total = sum(part.max_points for part in result.parts)
    assert result.fraction == pytest.approx((total - parts[function].max_points) / total), result.message


def test_no_mask_ap_case_hinges_on_a_tie_or_a_rounding():
    """The grader's AP scenes: no prediction overlaps two objects equally (pycocotools would take the last of them,
    a simple argmax the first), and G is 1, 3 or 7 (no recall TP / G sits on a level k / 100 other than 0 and 1)."""
    from autograder.oracles import mask_iou

    for case in INPUTS["t6"]["ap_cases"]:
        assert case["true_masks"].shape[0] in (1, 3, 7)
        assert len(set(case["scores"].tolist())) == len(case["scores"])
        for row in mask_iou(case["pred_masks"], case["true_masks"]):
            positive = [v for v in row.tolist() if v > 0]
            assert len(positive) == len(set(positive)), row


@pytest.mark.parametrize("cell, function", sorted(BUGS), ids=lambda v: str(v))
def test_a_function_that_raises_loses_its_own_part_only(cell, function):
    """A function left as the stub (it raises) costs its part; the cell's other functions are still graded."""
    source = reference_cell(cell)
    tree = __import__("ast").parse(source)
    node = next(n for n in tree.body if getattr(n, "name", None) == function)
    lines = source.splitlines()
    body_start = node.body[0].lineno - 1
    lines[body_start:node.end_lineno] = ['    raise NotImplementedError("not written yet")']
    result = judge(cell, "\n".join(lines))
    if not result.parts:
        assert result.fraction == 0.0, result.message
        return
    lost = {part.name for part in result.parts if part.points == 0}
    assert lost == {function} and "NotImplementedError" in result.message, result.message


# Wrong at one of the edges the docstring draws, right everywhere else: each loses its function's part. (Before
# review, the hidden inputs never reached these edges, so each of these earned every point.)
EDGE_BUGS = {
    ("t1_panoptic", "panoptic_quality", "a match at IoU 0.5, not above it"): [("if iou > 0.5:", "if iou >= 0.5:")],
    ("t1_panoptic", "panoptic_quality", "a segment exactly half on void left out"): [
        ("if 2 * int((in_p & void).sum()) <= int(in_p.sum()):", "if 2 * int((in_p & void).sum()) < int(in_p.sum()):")],
    ("t3_roi_align", "roi_align_one", "no zero beyond the map"): [
        ("    if y < -1 or y > h or x < -1 or x > w:\n        return feature.new_zeros(c)\n", "")],
    ("t3_roi_align", "roi_align_one", "no clamping to the first and last rows"): [
        ("y, x = min(max(y, 0.0), h - 1), min(max(x, 0.0), w - 1)", "pass")],
    ("t6_metrics", "mask_ap", "the first object above the threshold, not the best"): [
        ("best = int(candidates.argmax())",
         "hit = (candidates >= iou_threshold).nonzero(); best = int(hit[0, 0]) if len(hit) else int(candidates.argmax())")],
    ("t6_metrics", "mask_ap", "IoU above the threshold, not at least"): [
        ("if candidates[best] >= iou_threshold:", "if candidates[best] > iou_threshold:")],
    ("t7_sam", "plausible_masks", "scores above the thresholds, not at least"): [
        ("keep = (predicted_iou >= iou_threshold) & (stability >= stability_threshold)",
         "keep = (predicted_iou > iou_threshold) & (stability > stability_threshold)")],
    ("t9_imbalance", "ohem_keep_mask", "none kept when the fraction rounds to zero"): [
        ("k = max(1, int(round(keep_fraction * flat.numel())))", "k = int(round(keep_fraction * flat.numel()))")],
}


def with_bug(cell: str, replacements: list[tuple[str, str]]) -> str:
    source = reference_cell(cell)
    for old, new in replacements:
        assert old in source, f"the planted bug no longer applies to the reference: {old!r}"
        source = source.replace(old, new)
    return source


@pytest.mark.parametrize("cell, function, bug", sorted(EDGE_BUGS), ids=lambda v: str(v))
def test_a_bug_at_an_edge_of_the_docstring_loses_that_functions_points(cell, function, bug):
    result = judge(cell, with_bug(cell, EDGE_BUGS[cell, function, bug]))
    assert {part.name for part in result.parts if part.points == 0} == {function}, result.message


def _graded_run(tmp_path, cells: dict[str, str]) -> dict[str, float]:
    """The probes' ``run`` as the sandbox calls it (the runner's shared namespace, the spec's cells), then the checks
    of those cells: {cell: fraction of its points}."""
    from autograder import sandbox_runner

    torch.save(INPUTS, tmp_path / "inputs.pt")
    errors = {}
    shared, spaces = sandbox_runner.run_cells({cell: textwrap.dedent(source) for cell, source in cells.items()}, errors)
    observations = probes.run(shared, {"inputs": str(tmp_path / "inputs.pt"), "cells": cells, "cell_namespaces": spaces})
    return {cell: run_check(f"test_{cell}", CHECKS[f"test_{cell}"], observations,
                            CheckContext(cells=cells, inputs=INPUTS)).fraction for cell in cells}


def test_a_later_cells_helper_never_replaces_an_earlier_cells_helper(tmp_path):
    """Two correct cells with a top-level helper of the same name and another meaning: in the runner's one namespace
    the later helper replaces the earlier one before any function is called (the upsampler parameters lost 3 points
    this way); each cell is graded with its own."""
    upsampling = textwrap.dedent('''
        def _count(cin, cout, k, copies=1):
            return copies * (cin * cout * k * k + cout)

        def transposed_conv_coverage(kernel_size, stride, length):
            return [sum(0 <= o - i * stride < kernel_size for i in range(length))
                    for o in range((length - 1) * stride + kernel_size)]

        def upsampler_parameters(in_channels, out_channels):
            return {"transposed": _count(in_channels, out_channels, 2),
                    "bilinear+conv": _count(in_channels, out_channels, 3),
                    "pixelshuffle": _count(in_channels, out_channels, 3, 4)}
        ''')
    imbalance = reference_cell("t9_imbalance").replace(
        "def ohem_keep_mask", "def _count(fraction, n):\n    return max(1, int(round(fraction * n)))\n\n\ndef ohem_keep_mask").replace(
        "k = max(1, int(round(keep_fraction * flat.numel())))", "k = _count(keep_fraction, flat.numel())")
    assert _graded_run(tmp_path, {"t8_upsampling": upsampling, "t9_imbalance": imbalance}) == \
        {"t8_upsampling": 1.0, "t9_imbalance": 1.0}


def test_a_cell_sees_the_graded_cells_above_it_and_not_those_below(tmp_path):
    """As the check under each cell sees them in the notebook: a helper of a graded cell above is there, one of a
    cell below is not (a NameError that costs the function using it, nothing else)."""
    above = reference_cell("t8_upsampling") + "\n\ndef _how_many(fraction, n):\n    return max(1, int(round(fraction * n)))\n"
    imbalance = reference_cell("t9_imbalance").replace("k = max(1, int(round(keep_fraction * flat.numel())))",
                                                       "k = _how_many(keep_fraction, flat.numel())")
    assert _graded_run(tmp_path, {"t8_upsampling": above, "t9_imbalance": imbalance})["t9_imbalance"] == 1.0
    below = reference_cell("t8_upsampling").replace("    return {\n", "    return _blocks(in_channels, out_channels) or {\n")
    assert below != reference_cell("t8_upsampling")
    fractions = _graded_run(tmp_path, {"t8_upsampling": below,
                                       "t9_imbalance": reference_cell("t9_imbalance") + "\n\ndef _blocks(a, b):\n    return None\n"})
    assert fractions == {"t8_upsampling": 0.5, "t9_imbalance": 1.0}
