"""``Assignment``: what the grader knows about one assignment, declared once, in that assignment's checks module.

The judge, the pipeline, the release and the standalone runner read this declaration and know nothing else about
any assignment. Adding an assignment is one new module under ``autograder/checks/`` that defines ``ASSIGNMENT``,
plus its line in ``autograder.checks.ASSIGNMENTS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from autograder.errors import GraderError

# A verdict: (observations from the sandbox, context built by the judge) -> message; raises AssertionError to fail.
Check = Callable[[dict, dict], str]


class UnknownAssignment(GraderError, ValueError):
    """An assignment name the grader has no declaration for; the message lists the known ones."""


@dataclass(frozen=True)
class Assignment:
    """One assignment as the grader sees it.

    Attributes:
        name: nbgrader's assignment id (the folder under ``source/`` and ``release/``).
        notebook: the notebook's file name.
        code_cells: grade ids of the student's code cells that the probes execute, in notebook order.
        checks: grade id of each autograded cell → its verdict (the one place a check is written).
        points: grade id of each autograded cell → its points (the notebook's nbgrader metadata says the same:
            tested); a check made of parts splits exactly these points among them.
        probes_file: a standalone script (no autograder import) run in the sandbox beside the student's code.
        make_inputs: makes the probes' inputs in the grader's process (``None``: the probes need none).
        checkpoint: hand-in weights the grader evaluates on its data (``None``: not graded on data).
        results_file: hand-in metrics file written next to the checkpoint.
        results_table_cell: grade id of the Markdown answer that reports the results table.
        reference_artifacts: files the source notebook makes by training; the release validates with them.
    """

    name: str
    notebook: str
    code_cells: tuple[str, ...]
    checks: Mapping[str, Check]
    probes_file: Path
    points: Mapping[str, float] = field(default_factory=dict)
    make_inputs: Callable[[], dict] | None = None
    checkpoint: str | None = None
    results_file: str | None = None
    results_table_cell: str | None = None
    reference_artifacts: tuple[str, ...] = ()

    @property
    def graded_on_data(self) -> bool:
        """True when a checkpoint is evaluated on the grading data (its mIoU decides checks)."""
        return self.checkpoint is not None
