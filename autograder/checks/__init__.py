"""The assignments the grader knows, by name: each module here declares its ``ASSIGNMENT``
(``autograder.assignment.Assignment``).

In each module:

- the probes file is a standalone script (no autograder import) run inside the sandbox next to the student's code.
  It executes the student's code cells and records raw observations (shapes, tensors, predictions);
- ``CHECKS`` maps each autograded cell's grade_id to its verdict, which runs in the grader's own process (it never
  executes student code) and turns observations plus the submitted files into a message, or fails.
"""

from autograder.assignment import Assignment, UnknownAssignment
from autograder.checks import segmentation_concepts, segmentation_hw

ASSIGNMENTS: dict[str, Assignment] = {a.name: a for a in (segmentation_hw.ASSIGNMENT, segmentation_concepts.ASSIGNMENT)}


def get_assignment(name: str) -> Assignment:
    """The declaration of ``name``; the error lists the assignments the grader knows."""
    if name not in ASSIGNMENTS:
        raise UnknownAssignment(f"unknown assignment {name!r}; the grader knows {sorted(ASSIGNMENTS)}")
    return ASSIGNMENTS[name]
