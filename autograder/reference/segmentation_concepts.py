"""Reference solutions of Assignment 2 (segmentation concepts), one block per graded cell.

Kept identical to the solution regions of ``source/segmentation_concepts/segmentation_concepts.ipynb``
(``tests/test_concepts.py`` checks it; docstrings live in the notebook).
"""

import math

import torch
import torch.nn.functional as F


# BEGIN t1_panoptic
def panoptic_map(semantic, instance_masks, instance_classes, thing_classes):
    panoptic = semantic.long() * 1000  # stuff: class only (instance 0)
    is_thing = torch.zeros_like(semantic, dtype=torch.bool)
    for c in thing_classes:
        is_thing |= semantic == c
    panoptic[is_thing] = -1  # thing pixels that no instance claims are void
    for index, (mask, cls) in enumerate(zip(instance_masks, instance_classes)):
        panoptic[mask] = int(cls) * 1000 + index + 1  # later instances are drawn on top
    return panoptic


def panoptic_quality(pred, truth):
    pred, truth = pred.flatten().long(), truth.flatten().long()
    void = truth == -1
    true_ids = truth[~void].unique().tolist()
    stats, matched_true = {}, set()  # class -> [sum of IoUs, TP, FP, FN]
    for p in pred[pred != -1].unique().tolist():
        in_p = pred == p
        row = stats.setdefault(p // 1000, [0.0, 0, 0, 0])
        for t in (t for t in true_ids if t // 1000 == p // 1000):
            in_t = truth == t
            inter = int((in_p & in_t).sum())
            iou = inter / (int((in_p & ~void).sum()) + int(in_t.sum()) - inter)
            if iou > 0.5:
                row[0], row[1] = row[0] + iou, row[1] + 1
                matched_true.add(t)
                break
        else:  # no match: a false positive, unless it lies mostly on void
            if 2 * int((in_p & void).sum()) <= int(in_p.sum()):
                row[2] += 1
    for t in true_ids:
        if t not in matched_true:
            stats.setdefault(t // 1000, [0.0, 0, 0, 0])[3] += 1
    scores = []
    for iou_sum, tp, fp, fn in stats.values():
        if tp + fp + fn:
            sq, rq = (iou_sum / tp if tp else 0.0), tp / (tp + fp / 2 + fn / 2)
            scores.append((sq * rq, sq, rq))
    if not scores:
        return float("nan"), float("nan"), float("nan")
    return tuple(sum(s[i] for s in scores) / len(scores) for i in range(3))
# END t1_panoptic


# BEGIN t2_unet
def mask_boundary(mask):
    grid = F.pad(mask[None, None].float(), (1, 1, 1, 1), mode="replicate")[0, 0]  # the edge repeats: inside
    all_four_inside = grid[:-2, 1:-1] * grid[2:, 1:-1] * grid[1:-1, :-2] * grid[1:-1, 2:]
    return mask & (all_four_inside == 0)


def boundary_f1(pred_boundary, true_boundary, tolerance):
    def near(boundary):  # every pixel within `tolerance` of a boundary pixel (Chebyshev distance)
        side = 2 * tolerance + 1
        return F.max_pool2d(boundary[None, None].float(), side, stride=1, padding=tolerance)[0, 0] > 0

    n_pred, n_true = int(pred_boundary.sum()), int(true_boundary.sum())
    if min(n_pred, n_true) == 0:  # no boundary on one side at least
        return 1.0 if n_pred == n_true else 0.0
    precision = int((pred_boundary & near(true_boundary)).sum()) / n_pred
    recall = int((true_boundary & near(pred_boundary)).sum()) / n_true
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
# END t2_unet


# BEGIN t3_roi_align
def bilinear_sample(feature, y, x):
    c, h, w = feature.shape
    if y < -1 or y > h or x < -1 or x > w:
        return feature.new_zeros(c)
    y, x = min(max(y, 0.0), h - 1), min(max(x, 0.0), w - 1)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * feature[:, y0, x0] + (1 - ly) * lx * feature[:, y0, x1]
            + ly * (1 - lx) * feature[:, y1, x0] + ly * lx * feature[:, y1, x1])


def roi_align_one(feature, box, output_size, sampling_ratio):
    x1, y1, x2, y2 = [float(v) - 0.5 for v in box]  # aligned=True: pixel centres sit at +0.5
    bin_h, bin_w = (y2 - y1) / output_size, (x2 - x1) / output_size
    out = feature.new_zeros(feature.shape[0], output_size, output_size)
    for i in range(output_size):
        for j in range(output_size):
            acc = feature.new_zeros(feature.shape[0])
            for sy in range(sampling_ratio):
                for sx in range(sampling_ratio):
                    y = y1 + (i + (sy + 0.5) / sampling_ratio) * bin_h
                    x = x1 + (j + (sx + 0.5) / sampling_ratio) * bin_w
                    acc = acc + bilinear_sample(feature, y, x)
            out[:, i, j] = acc / sampling_ratio**2
    return out


def mask_head_loss(mask_logits, labels, targets):
    picked = mask_logits[torch.arange(mask_logits.shape[0]), labels]  # (N, M, M): each RoI's ground-truth class
    return (F.softplus(picked) - picked * targets.float()).mean()  # BCE with logits: log(1 + e^x) - t * x
# END t3_roi_align


# BEGIN t4_losses
def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    bce = F.softplus(logits) - logits * targets  # -log(p_t), computed stably from the logits
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * (1 - p_t) ** gamma * bce).mean()


def binary_tversky_loss(logits, targets, alpha=0.5, beta=0.5, eps=1.0):
    p = torch.sigmoid(logits).flatten()
    t = targets.float().flatten()
    tp, fp, fn = (p * t).sum(), (p * (1 - t)).sum(), ((1 - p) * t).sum()
    return 1 - (tp + eps) / (tp + alpha * fp + beta * fn + eps)
# END t4_losses


# BEGIN t5_atrous
def receptive_field(layers):
    field, jump = 1, 1
    for kernel, dilation, stride in layers:
        field += (kernel - 1) * dilation * jump  # a dilated kernel spans (k - 1) * d + 1 input positions
        jump *= stride
    return field


def empirical_receptive_field(model, size=65):
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = model(x)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    touched = (x.grad[0, 0].abs() > 0).nonzero()
    return int(touched[:, 0].max() - touched[:, 0].min() + 1)
# END t5_atrous


# BEGIN t6_metrics
def iou_and_dice(confusion):
    cm = confusion.double()
    tp = cm.diag()
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    nan = torch.full_like(tp, float("nan"))
    iou = torch.where(tp + fp + fn > 0, tp / (tp + fp + fn).clamp(min=1), nan)
    dice = torch.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn).clamp(min=1), nan)
    return iou, dice


def mask_ap(pred_masks, scores, true_masks, iou_threshold):
    order = torch.argsort(scores, descending=True)
    pred = pred_masks[order].flatten(1).double()  # (P, H*W)
    truth = true_masks.flatten(1).double()  # (G, H*W)
    overlap = pred @ truth.t()
    iou = overlap / (pred.sum(1, keepdim=True) + truth.sum(1) - overlap).clamp(min=1)  # (P, G)
    free = torch.ones(truth.shape[0], dtype=torch.bool)
    hits = torch.zeros(pred.shape[0])
    for i in range(pred.shape[0]):
        candidates = torch.where(free, iou[i], torch.full_like(iou[i], -1.0))
        best = int(candidates.argmax())
        if candidates[best] >= iou_threshold:
            free[best], hits[i] = False, 1.0
    tp = hits.cumsum(0)
    recall = tp / truth.shape[0]
    precision = tp / torch.arange(1, pred.shape[0] + 1)
    best_from_here = precision.flip(0).cummax(0).values.flip(0)  # highest precision at this recall or beyond
    total = 0.0
    for level in range(101):
        reached = (recall >= level / 100).nonzero()
        total += float(best_from_here[reached[0, 0]]) if len(reached) else 0.0
    return total / 101
# END t6_metrics


# BEGIN t7_sam
def fourier_point_encoding(points, frequencies):
    projected = 2 * math.pi * (2 * points - 1) @ frequencies  # (N, 2) @ (2, F) -> (N, F)
    return torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1)


def stability_score(mask_logits, offset=1.0):
    high = (mask_logits > offset).flatten(1).sum(1)
    low = (mask_logits > -offset).flatten(1).sum(1)
    return torch.where(low > 0, high / low.clamp(min=1), torch.ones(len(low)))


def plausible_masks(mask_logits, predicted_iou, stability, iou_threshold=0.88, stability_threshold=0.95):
    keep = (predicted_iou >= iou_threshold) & (stability >= stability_threshold)
    order = [i for i in torch.argsort(predicted_iou, descending=True, stable=True).tolist() if keep[i]]
    return mask_logits[order] > 0
# END t7_sam


# BEGIN t8_upsampling
def transposed_conv_coverage(kernel_size, stride, length):
    coverage = [0] * ((length - 1) * stride + kernel_size)
    for i in range(length):  # input position i paints the kernel at output i * stride ... i * stride + k - 1
        for k in range(kernel_size):
            coverage[i * stride + k] += 1
    return coverage


def upsampler_parameters(in_channels, out_channels):
    return {
        "transposed": 4 * in_channels * out_channels + out_channels,
        "bilinear+conv": 9 * in_channels * out_channels + out_channels,
        "pixelshuffle": 9 * in_channels * out_channels * 4 + out_channels * 4,
    }
# END t8_upsampling


# BEGIN t9_imbalance
def median_frequency_weights(masks, num_classes, ignore_index=255):
    flat = masks.flatten(1).long()  # (N, H*W)
    valid = flat != ignore_index
    image_pixels = valid.sum(1).double()  # (N,) counted pixels of each image
    counts = torch.stack([((flat == c) & valid).sum(1) for c in range(num_classes)], 1).double()  # (N, C)
    occurs = counts.sum(0) > 0
    exposure = ((counts > 0).double() * image_pixels[:, None]).sum(0)  # pixels of the images holding each class
    freq = counts.sum(0)[occurs] / exposure[occurs]
    middle = freq.sort().values
    k = len(middle)
    median = (middle[(k - 1) // 2] + middle[k // 2]) / 2 if k else 0.0
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[occurs] = median / freq
    return weights.float()


def ohem_keep_mask(pixel_losses, keep_fraction):
    flat = pixel_losses.flatten()
    k = max(1, int(round(keep_fraction * flat.numel())))
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[flat.topk(k).indices] = True
    return keep.view_as(pixel_losses)
# END t9_imbalance


# BEGIN t10_segformer
def attention_flops(num_tokens, dim, sr_ratio):
    keys = num_tokens // sr_ratio**2  # spatial reduction shrinks the key/value grid by R per side
    return 2 * (2 * num_tokens * keys * dim)  # Q @ K^T and A @ V, 2 FLOPs per multiply-add


def reduced_attention(tokens, height, width, sr_ratio):
    channels = tokens.shape[1]
    grid = tokens.t().reshape(1, channels, height, width)  # (1, C, H, W)
    shrunk = F.avg_pool2d(grid, sr_ratio).flatten(2)[0].t()  # (N / R**2, C): keys and values
    weights = (tokens @ shrunk.t() / math.sqrt(channels)).softmax(dim=-1)  # (N, N / R**2)
    return weights @ shrunk


def depthwise_conv3x3(x, weight):
    height, width = x.shape[1:]
    padded = F.pad(x, (1, 1, 1, 1))  # zeros around the image
    out = torch.zeros_like(x)
    for a in range(3):
        for b in range(3):
            out = out + weight[:, a, b, None, None] * padded[:, a:a + height, b:b + width]
    return out
# END t10_segformer
