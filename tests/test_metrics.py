"""Metrics against torchmetrics (the oracle) and hand-computed edge cases."""

import math

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from course_lib.metrics import (
    ConfusionMatrix, binary_boundary_f1, boundary_f1, class_accuracy, dice_from_iou, dice_per_class,
    frequency_weighted_iou, iou_from_dice, iou_per_class, mean_class_accuracy, mean_dice, mean_iou,
    panoptic_quality, pixel_accuracy,
)

K = 21


def oracle_miou(preds, target):
    metric = MulticlassJaccardIndex(num_classes=K, ignore_index=255, average="macro")
    return float(metric(preds, target))


def ours(preds, target):
    cm = ConfusionMatrix(K)
    cm.update(preds, target)
    return cm.matrix


def random_batch(seed, n=4, size=16, void=0.1, classes=K):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, (n, size, size), generator=g)
    preds = torch.where(torch.rand(n, size, size, generator=g) < 0.6, target,
                        torch.randint(0, classes, (n, size, size), generator=g))
    target[torch.rand(n, size, size, generator=g) < void] = 255
    return preds, target


@pytest.mark.parametrize("seed", range(5))
def test_miou_matches_torchmetrics_on_random_batches(seed):
    preds, target = random_batch(seed)
    assert abs(mean_iou(ours(preds, target)) - oracle_miou(preds, target)) < 1e-6


def test_miou_with_absent_classes_matches_torchmetrics():
    preds, target = random_batch(7, classes=5)  # classes 5..20 appear nowhere
    preds[0, 0, 0] = 9  # one class only in the prediction: IoU 0, counted
    assert abs(mean_iou(ours(preds, target)) - oracle_miou(preds, target)) < 1e-6
    iou = iou_per_class(ours(preds, target))
    assert math.isnan(iou[12]) and iou[9] == 0.0


def test_all_ignore_image_contributes_nothing():
    preds, target = random_batch(3)
    extra_preds = torch.randint(0, K, (1, 16, 16))
    extra_target = torch.full((1, 16, 16), 255)
    both = ours(torch.cat([preds, extra_preds]), torch.cat([target, extra_target]))
    assert torch.equal(both, ours(preds, target))
    assert abs(mean_iou(both) - oracle_miou(torch.cat([preds, extra_preds]), torch.cat([target, extra_target]))) < 1e-6


def test_everything_ignored_gives_nan_not_error():
    cm = ours(torch.zeros(1, 4, 4, dtype=torch.long), torch.full((1, 4, 4), 255))
    assert math.isnan(mean_iou(cm)) and math.isnan(pixel_accuracy(cm))


def test_streaming_accumulation_equals_whole_dataset_not_mean_of_batches():
    batches = [random_batch(s, n=2) for s in range(4)]
    cm = ConfusionMatrix(K)
    for p, t in batches:
        cm.update(p, t)
    all_p, all_t = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    assert abs(mean_iou(cm.matrix) - oracle_miou(all_p, all_t)) < 1e-6
    per_batch_mean = sum(oracle_miou(p, t) for p, t in batches) / len(batches)
    assert abs(mean_iou(cm.matrix) - per_batch_mean) > 1e-6  # the convention is visible


def test_pixel_and_class_accuracy_match_torchmetrics():
    preds, target = random_batch(11)
    cm = ours(preds, target)
    micro = MulticlassAccuracy(num_classes=K, ignore_index=255, average="micro")(preds, target)
    assert abs(pixel_accuracy(cm) - float(micro)) < 1e-6
    macro = MulticlassAccuracy(num_classes=K, ignore_index=255, average="macro")(preds, target)
    assert abs(mean_class_accuracy(cm) - float(macro)) < 1e-6


def test_hand_computed_two_class_case():
    target = torch.tensor([[[0, 0, 1, 1]]])
    preds = torch.tensor([[[0, 1, 1, 1]]])
    cm = ConfusionMatrix(2)
    cm.update(preds, target)
    assert cm.matrix.tolist() == [[1, 1], [0, 2]]
    assert iou_per_class(cm.matrix).tolist() == pytest.approx([0.5, 2 / 3])
    assert dice_per_class(cm.matrix).tolist() == pytest.approx([2 / 3, 0.8])
    assert mean_dice(cm.matrix) == pytest.approx((2 / 3 + 0.8) / 2)
    assert class_accuracy(cm.matrix).tolist() == pytest.approx([0.5, 1.0])
    assert frequency_weighted_iou(cm.matrix) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    for iou, dice in zip(iou_per_class(cm.matrix), dice_per_class(cm.matrix)):
        assert float(dice_from_iou(iou)) == pytest.approx(float(dice))
        assert float(iou_from_dice(dice)) == pytest.approx(float(iou))
    assert dice_from_iou(0.818) == pytest.approx(0.90, abs=1e-3)


def test_confusion_matrix_rejects_out_of_range_predictions_and_shape_mismatch():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="predictions must lie"):
        cm.update(torch.tensor([[5]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="same shape"):
        cm.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 3, dtype=torch.long))


def test_merge_adds_counts():
    a, b = ConfusionMatrix(K), ConfusionMatrix(K)
    p, t = random_batch(1)
    a.update(p, t)
    b.update(p, t)
    a.merge(b)
    assert torch.equal(a.matrix, 2 * ours(p, t))


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


# --- mask AP: course_lib's against pycocotools, the reference implementation of COCO's evaluation -----------------

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
    from course_lib.metrics import average_precision, coco_mask_ap

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
    from course_lib.metrics import average_precision

    truth = torch.zeros(2, 8, 8, dtype=torch.bool)
    truth[0, :4, :4] = truth[1, 4:, 4:] = True
    assert average_precision(truth, torch.tensor([0.9, 0.8]), truth, 0.5) == 1.0
    assert average_precision(truth[:0], torch.zeros(0), truth, 0.5) == 0.0  # nothing predicted
    assert math.isnan(average_precision(truth, torch.tensor([0.9, 0.8]), truth[:0], 0.5))  # nothing to find
    # a duplicate ranked first keeps precision 1 at recall 1/2, then 2/3: AP = (51 · 1 + 50 · 2/3) / 101
    duplicate = torch.stack([truth[0], truth[0], truth[1]])
    assert average_precision(duplicate, torch.tensor([0.9, 0.8, 0.7]), truth, 0.5) == pytest.approx((51 + 50 * 2 / 3) / 101)
