"""Metrics of the homework: one confusion matrix as the source of every figure (mIoU, pixel accuracy, class
accuracy). The concepts assignment's metrics (boundary F1, panoptic quality, mask AP, Dice) are the students' own
exercises: their oracles live in the grader (``autograder.oracles``), never here."""

from course_lib.metrics.confusion import ConfusionMatrix
from course_lib.metrics.semantic import (
    class_accuracy, frequency_weighted_iou, iou_per_class, mean_class_accuracy, mean_iou, pixel_accuracy,
)

__all__ = [
    "ConfusionMatrix", "iou_per_class", "mean_iou", "pixel_accuracy", "class_accuracy", "mean_class_accuracy",
    "frequency_weighted_iou",
]
