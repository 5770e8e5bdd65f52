"""Metrics: one confusion matrix as the source of every semantic figure, plus boundary F1, PQ and mask AP."""

from course_lib.metrics.boundary import binary_boundary_f1, boundary_f1, mask_boundary
from course_lib.metrics.confusion import ConfusionMatrix
from course_lib.metrics.instance import average_precision, coco_mask_ap, mask_iou
from course_lib.metrics.panoptic import panoptic_quality
from course_lib.metrics.semantic import (
    class_accuracy, dice_from_iou, dice_per_class, frequency_weighted_iou, iou_from_dice, iou_per_class,
    mean_class_accuracy, mean_dice, mean_iou, pixel_accuracy, summarize,
)

__all__ = [
    "ConfusionMatrix", "iou_per_class", "mean_iou", "pixel_accuracy", "class_accuracy", "mean_class_accuracy",
    "dice_per_class", "mean_dice", "frequency_weighted_iou", "dice_from_iou", "iou_from_dice", "summarize",
    "mask_boundary", "binary_boundary_f1", "boundary_f1", "panoptic_quality",
    "mask_iou", "average_precision", "coco_mask_ap",
]
