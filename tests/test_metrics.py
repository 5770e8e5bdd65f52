"""Metrics against torchmetrics (the oracle) and hand-computed edge cases."""

import math

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from course_lib.metrics import (
    ConfusionMatrix, class_accuracy, frequency_weighted_iou, iou_per_class, mean_class_accuracy, mean_iou,
    pixel_accuracy,
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
    assert class_accuracy(cm.matrix).tolist() == pytest.approx([0.5, 1.0])
    assert frequency_weighted_iou(cm.matrix) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


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
