"""Panoptic quality: Kirillov, He, Girshick, Rother and Dollár, "Panoptic Segmentation", CVPR 2019; the grader's
oracle of topic 1's ``panoptic_quality`` (tested against torchmetrics' ``PanopticQuality``).

A segment is a (category, instance) pair; for stuff categories the instance id is ignored (one
segment per category). A predicted and a true segment of the same category match when their IoU
exceeds 0.5 (which makes matches unique). Per category:

    PQ = Σ_TP IoU / (|TP| + ½|FP| + ½|FN|) = SQ × RQ,
    SQ = Σ_TP IoU / |TP|,  RQ = |TP| / (|TP| + ½|FP| + ½|FN|).

Void: ground-truth pixels whose category is neither thing nor stuff. Their overlap with a predicted
segment is removed from that segment's union, and a predicted segment lying more than half in void
is not counted as a false positive. The scores are averaged over categories with any TP, FP or FN,
as in torchmetrics' ``PanopticQuality``.
"""

from __future__ import annotations

from collections import defaultdict

import torch


def _segments(category: torch.Tensor, instance: torch.Tensor, stuffs: set[int]) -> torch.Tensor:
    """(P,) int64 segment key per pixel, category · 2**20 + instance (0 for stuff)."""
    is_stuff = torch.zeros_like(category, dtype=torch.bool)
    for s in stuffs:
        is_stuff |= category == s
    inst = torch.where(is_stuff, torch.zeros_like(instance), instance)
    return category.long() * (1 << 20) + inst.long()


def panoptic_quality(pred_category: torch.Tensor, pred_instance: torch.Tensor, true_category: torch.Tensor,
                     true_instance: torch.Tensor, things: set[int], stuffs: set[int]) -> dict[str, float]:
    """PQ, SQ and RQ of one image (or a batch pooled as one set of segments per image).

    Args:
        pred_category, pred_instance: (H, W) or (N, H, W) int predicted category and instance ids.
        true_category, true_instance: the same for the ground truth; categories outside
            ``things | stuffs`` are void.
        things, stuffs: category ids.
    Returns:
        ``{"pq", "sq", "rq"}`` averaged over categories, plus ``"per_category"``: {category: (pq, sq, rq)}.
    """
    if pred_category.ndim == 2:
        pred_category, pred_instance = pred_category.unsqueeze(0), pred_instance.unsqueeze(0)
        true_category, true_instance = true_category.unsqueeze(0), true_instance.unsqueeze(0)
    known = things | stuffs
    iou_sum, tp, fp, fn = defaultdict(float), defaultdict(int), defaultdict(int), defaultdict(int)
    for b in range(pred_category.shape[0]):
        pc, tc = pred_category[b].flatten(), true_category[b].flatten()
        ps, ts = _segments(pc, pred_instance[b].flatten(), stuffs), _segments(tc, true_instance[b].flatten(), stuffs)
        void = ~torch.isin(tc, torch.tensor(sorted(known), dtype=tc.dtype))
        pred_keys, pred_area = ps.unique(return_counts=True)
        pred_area = dict(zip(pred_keys.tolist(), pred_area.tolist()))
        void_overlap = dict(zip(*(t.tolist() for t in ps[void].unique(return_counts=True))))
        true_keys, true_area = ts[~void].unique(return_counts=True)
        true_area = dict(zip(true_keys.tolist(), true_area.tolist()))
        pairs, overlap = torch.stack([ps[~void], ts[~void]]).unique(dim=1, return_counts=True)
        matched_pred, matched_true = set(), set()
        for (p, t), inter in zip(pairs.t().tolist(), overlap.tolist()):
            if p >> 20 != t >> 20:
                continue
            union = pred_area[p] + true_area[t] - inter - void_overlap.get(p, 0)
            iou = inter / union
            if iou > 0.5:
                matched_pred.add(p)
                matched_true.add(t)
                iou_sum[t >> 20] += iou
                tp[t >> 20] += 1
        for t in true_area:
            if t not in matched_true:
                fn[t >> 20] += 1
        for p, area in pred_area.items():
            if p in matched_pred or (p >> 20) not in known:
                continue
            if void_overlap.get(p, 0) / area > 0.5:
                continue  # mostly void: not a false positive
            fp[p >> 20] += 1
    per_category = {}
    for c in sorted(known):
        denom = tp[c] + 0.5 * fp[c] + 0.5 * fn[c]
        if denom == 0:
            continue
        sq = iou_sum[c] / tp[c] if tp[c] else 0.0
        rq = tp[c] / denom
        per_category[c] = (sq * rq, sq, rq)
    if not per_category:
        return {"pq": float("nan"), "sq": float("nan"), "rq": float("nan"), "per_category": {}}
    values = list(per_category.values())
    mean = lambda i: sum(v[i] for v in values) / len(values)
    return {"pq": mean(0), "sq": mean(1), "rq": mean(2), "per_category": per_category}
