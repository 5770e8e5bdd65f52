"""Oracles of the concepts assignment (grader-only; never shipped to students).

Independent implementations of what the concepts exercises ask students to write, each tested against an outside
reference where one exists (torchmetrics' PanopticQuality, pycocotools' COCOeval) and by hand-computed cases
(``tests/test_oracles.py``). The hidden checks compare the students' outputs with these, in the grader's process.
The student package, ``course_lib``, keeps only what the homework needs (the confusion matrix and the IoU figures
derived from it); ``tests/test_setup.py`` proves that none of these is in its wheel.
"""

from autograder.oracles.boundary import binary_boundary_f1, boundary_f1, mask_boundary
from autograder.oracles.instance import average_precision, coco_mask_ap, mask_iou
from autograder.oracles.panoptic import panoptic_quality
from autograder.oracles.semantic import dice_per_class
from autograder.oracles.weights import median_frequency_weights

__all__ = ["mask_boundary", "binary_boundary_f1", "boundary_f1", "mask_iou", "average_precision", "coco_mask_ap",
           "panoptic_quality", "dice_per_class", "median_frequency_weights"]
