"""The grader's oracles of the concepts assignment (``autograder.oracles``) against outside references
(torchmetrics' PanopticQuality, pycocotools' COCOeval) and hand-computed cases."""

import math

import pytest
import torch

from autograder.oracles import (
    average_precision, binary_boundary_f1, boundary_f1, coco_mask_ap, dice_per_class, median_frequency_weights,
    panoptic_quality,
)


def test_dice_per_class_hand_computed_and_its_relation_to_iou():
    cm = torch.tensor([[1, 1, 0], [0, 2, 0], [0, 0, 0]])  # rows true, columns predicted; class 2 absent
    dice = dice_per_class(cm)
    assert dice[:2].tolist() == pytest.approx([2 / 3, 0.8]) and math.isnan(dice[2])
    iou = torch.tensor([0.5, 2 / 3])
    assert dice[:2].tolist() == pytest.approx((2 * iou / (1 + iou)).tolist())  # Dice = 2 IoU / (1 + IoU)


def test_median_frequency_weights_follow_eigen_and_fergus():
    """freq(c) = pixels of c / pixels of the images where c is present (not the share of all pixels)."""
    masks = torch.tensor([[[0, 0, 0, 1], [1, 1, 1, 1]],        # image 0: 3 background, 5 class 1
                          [[0, 0, 0, 0], [0, 0, 2, 255]]])     # image 1: 6 background, 1 class 2, 1 ignored
    freq = torch.tensor([9 / 15, 5 / 8, 1 / 7], dtype=torch.float64)  # 7 counted pixels in image 1
    weights = median_frequency_weights(masks, 4)
    assert weights.dtype == torch.float32 and weights[3] == 0
    assert weights[:3].tolist() == pytest.approx((9 / 15 / freq).tolist())  # the median is class 0's 9/15
    share = torch.tensor([9, 5, 1], dtype=torch.float64) / 15  # the share of all counted pixels gives other weights
    assert not torch.allclose(weights[:3].double(), share.median() / share)
    two = median_frequency_weights(torch.tensor([[[0, 0, 0, 1]]]), 2)  # an even count: the mean of the middle two
    assert two.tolist() == pytest.approx([(0.75 + 0.25) / 2 / 0.75, (0.75 + 0.25) / 2 / 0.25])
    assert median_frequency_weights(torch.full((1, 2, 2), 255), 3).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="num_classes"):
        median_frequency_weights(torch.tensor([[[5]]]), 3)


def test_boundary_f1_perfect_shifted_and_empty():
    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[5:15, 5:15] = True
    assert binary_boundary_f1(mask, mask, tolerance=0) == 1.0
    shifted = torch.roll(mask, 2, dims=1)
    assert binary_boundary_f1(shifted, mask, tolerance=2) == 1.0
    assert binary_boundary_f1(shifted, mask, tolerance=0) < 0.6
    empty = torch.zeros_like(mask)
    assert binary_boundary_f1(empty, empty) == 1.0 and binary_boundary_f1(empty, mask) == 0.0


def test_boundary_f1_hand_computed_one_pixel_off():
    truth = torch.zeros(1, 9, 9, dtype=torch.long)
    truth[0, 2:7, 2:7] = 1  # a 5×5 square: boundary of 16 pixels
    pred = torch.zeros_like(truth)
    pred[0, 2:7, 2:6] = 1  # 5×4: boundary 14 pixels; all but its right column (3 pixels) lie on the true one
    f1 = binary_boundary_f1(pred[0] == 1, truth[0] == 1, tolerance=0)
    precision, recall = 11 / 14, 11 / 16
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall))
    assert boundary_f1(pred, truth, num_classes=2, tolerance=1) > f1


def _panoptic_oracle(pred, target, things, stuffs):
    from torchmetrics.detection import PanopticQuality

    metric = PanopticQuality(things=things, stuffs=stuffs, return_sq_and_rq=True, allow_unknown_preds_category=True)
    return metric(pred, target).tolist()


def test_panoptic_quality_matches_torchmetrics():
    # categories: 0 stuff (road), 1 and 2 things; 9 = void in the ground truth
    tc = torch.zeros(1, 12, 12, dtype=torch.long)
    ti = torch.zeros_like(tc)
    tc[0, 1:5, 1:5], ti[0, 1:5, 1:5] = 1, 1
    tc[0, 6:11, 6:11], ti[0, 6:11, 6:11] = 1, 2
    tc[0, 0:3, 8:12], ti[0, 0:3, 8:12] = 2, 3
    tc[0, 11, :] = 9  # void row
    pc, pi = tc.clone(), ti.clone()
    pc[0, 11, :], pi[0, 11, :] = 0, 0
    pc[0, 1:5, 1:3] = 0  # instance 1 half lost to stuff: IoU 0.5, not a match
    pi[0, 1:5, 1:3] = 0
    pc[0, 6:8, 0:3], pi[0, 6:8, 0:3] = 2, 7  # a small false positive
    ours_ = panoptic_quality(pc, pi, tc, ti, things={1, 2}, stuffs={0})
    oracle = _panoptic_oracle(torch.stack([pc, pi], -1), torch.stack([tc, ti], -1), {1, 2}, {0})
    assert [ours_["pq"], ours_["sq"], ours_["rq"]] == pytest.approx(oracle, abs=1e-6)


def test_panoptic_quality_perfect_is_one():
    c = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    i = torch.tensor([[0, 0, 5, 5], [0, 0, 5, 5]])
    out = panoptic_quality(c, i, c, i, things={1}, stuffs={0})
    assert out["pq"] == out["sq"] == out["rq"] == 1.0


# --- mask AP: the oracle against pycocotools, the reference implementation of COCO's evaluation -----------------

def _coco_ap(pred: torch.Tensor, scores: torch.Tensor, truth: torch.Tensor, thresholds: list[float]) -> list[float]:
    """AP per IoU threshold from pycocotools' COCOeval on one image of one class (area "all", 100 detections)."""
    import contextlib
    import io

    import numpy as np
    from pycocotools import mask as rle_codec
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def rle(m):
        code = rle_codec.encode(np.asfortranarray(m.numpy().astype(np.uint8)))
        return {**code, "counts": code["counts"].decode()}

    height, width = truth.shape[1:]
    annotations = [{"id": i + 1, "image_id": 1, "category_id": 1, "segmentation": rle(m), "area": float(m.sum()),
                    "iscrowd": 0, "bbox": list(rle_codec.toBbox(rle(m)))} for i, m in enumerate(truth)]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground = COCO()
        ground.dataset = {"images": [{"id": 1, "height": height, "width": width}], "categories": [{"id": 1}],
                          "annotations": annotations}
        ground.createIndex()
        found = ground.loadRes([{"image_id": 1, "category_id": 1, "segmentation": rle(m), "score": float(s)}
                                for m, s in zip(pred, scores)])
        evaluation = COCOeval(ground, found, "segm")
        evaluation.params.iouThrs = np.array(thresholds)
        evaluation.evaluate()
        evaluation.accumulate()
    return evaluation.eval["precision"][:, :, 0, 0, 2].mean(axis=1).tolist()  # T x R, area all, 100 detections


@pytest.mark.parametrize("seed", range(4))
def test_mask_ap_equals_pycocotools(seed):
    pytest.importorskip("pycocotools", reason="pycocotools (the dev extra) is not installed")
    g = torch.Generator().manual_seed(seed)
    thresholds = [0.3, 0.5, 0.75, 0.9]
    for _ in range(15):
        objects, guesses = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(1, 9, (1,), generator=g))
        truth = torch.zeros(objects, 24, 24, dtype=torch.bool)
        for k in range(objects):
            y, x, h, w = torch.randint(0, 16, (2,), generator=g).tolist() + torch.randint(3, 9, (2,), generator=g).tolist()
            truth[k, y:y + h, x:x + w] = True
        pred = torch.zeros(guesses, 24, 24, dtype=torch.bool)
        for k in range(guesses):  # a shifted copy of some object, with a few stray pixels
            source = truth[int(torch.randint(0, objects, (1,), generator=g))]
            shift = tuple(torch.randint(-3, 4, (2,), generator=g).tolist())
            pred[k] = torch.roll(source, shift, (0, 1)) | (torch.rand(24, 24, generator=g) > 0.97)
        scores = torch.rand(guesses, generator=g)
        ours = [average_precision(pred, scores, truth, t) for t in thresholds]
        assert ours == pytest.approx(_coco_ap(pred, scores, truth, thresholds), abs=1e-12)
        coco = coco_mask_ap(pred, scores, truth)
        assert coco == pytest.approx(sum(_coco_ap(pred, scores, truth, [0.5 + 0.05 * i for i in range(10)])) / 10)


def test_mask_ap_edge_cases():
    truth = torch.zeros(2, 8, 8, dtype=torch.bool)
    truth[0, :4, :4] = truth[1, 4:, 4:] = True
    assert average_precision(truth, torch.tensor([0.9, 0.8]), truth, 0.5) == 1.0
    assert average_precision(truth[:0], torch.zeros(0), truth, 0.5) == 0.0  # nothing predicted
    assert math.isnan(average_precision(truth, torch.tensor([0.9, 0.8]), truth[:0], 0.5))  # nothing to find
    # a duplicate ranked first keeps precision 1 at recall 1/2, then 2/3: AP = (51 · 1 + 50 · 2/3) / 101
    duplicate = torch.stack([truth[0], truth[0], truth[1]])
    assert average_precision(duplicate, torch.tensor([0.9, 0.8, 0.7]), truth, 0.5) == pytest.approx((51 + 50 * 2 / 3) / 101)
