"""Hidden checks, one per autograded cell, named after the cell's grade_id.

Each assignment module defines:

- ``PROBES_FILE``: a standalone script (no autograder import) run inside the sandbox next to the student's code.
  It executes the student's class cells and records raw observations (shapes, tensors, predictions).
- ``CHECKS``: ``{grade_id: verdict}``; a verdict runs in the grader's own process, which never executes student
  code, and turns observations plus the submitted files into ``(passed, message)``.
"""

from autograder.checks import segmentation_concepts, segmentation_hw

ASSIGNMENT_CHECKS = {"segmentation_hw": segmentation_hw, "segmentation_concepts": segmentation_concepts}
