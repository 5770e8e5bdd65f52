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


@dataclass(frozen=True)
class CheckContext:
    """What the judge hands every check beside the sandbox's observations: the submission as data, read in the
    grader's process (never by student code).

    Attributes:
        answers: grade id → Markdown source of each written answer.
        cells: grade id → source of each of the student's code cells that the probes ran.
        inputs: what ``Assignment.make_inputs`` made for the probes (None when it makes none).
        reported: the results table's figures as the student wrote them (``course_lib.answers.parse_results_table``).
        results_metrics: the metrics of the submitted results file.
        miou: the checkpoint's mIoU recomputed by the judge (``public``, ``heldout``, ``effective``, ``heldout_kind``),
            None when it could not be evaluated, and then ``miou_error`` says why.
        setting_mismatch: the judge's note when the submission was made for another setting than the term's.
        tiers: the term's declared mIoU tiers (``course_lib.term.Tiers``, from ``course.toml``; None: the defaults).
        checkpoint: what the grader read from the submitted checkpoint itself (``autograder.judge.CheckpointFacts``;
            None when there is none or it could not be read, and then ``checkpoint_error`` may say why).
        flags: the verdict's suspicions (``Verdict.flags``); a check that catches a forgery appends its reason here,
            the one mutable field, shared with the verdict so that every suspicion reaches the TA.
    """

    answers: Mapping[str, str] = field(default_factory=dict)
    cells: Mapping[str, str] = field(default_factory=dict)
    inputs: dict | None = None
    reported: Mapping[str, float] = field(default_factory=dict)
    results_metrics: Mapping[str, object] = field(default_factory=dict)
    miou: Mapping[str, object] | None = None
    miou_error: str | None = None
    setting_mismatch: str | None = None
    tiers: object | None = None
    checkpoint: object | None = None
    checkpoint_error: str | None = None
    flags: list[str] = field(default_factory=list)


# A verdict: (observations from the sandbox, the judge's context) -> message, or ``PartialCredit``
# (``autograder.checks.common``); raises AssertionError to fail.
Check = Callable[[dict, CheckContext], object]


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
        points: grade id of each autograded cell → its points: the one place they are declared. The notebook's
            nbgrader metadata must say the same (``tests/test_assignment_declaration.py``; ``grade`` refuses a
            gradebook that disagrees); a check made of parts splits exactly these points among them.
        probes_file: a standalone script (no autograder import) run in the sandbox beside the student's code.
        make_inputs: makes the probes' inputs in the grader's process (``None``: the probes need none).
        checkpoint: hand-in weights the grader evaluates on its data (``None``: not graded on data).
        results_file: hand-in metrics file written next to the checkpoint.
        results_table_cell: grade id of the Markdown answer that reports the results table.
        reference_artifacts: files the source notebook makes by training; the release validates with them.
        sandbox_modules: the third-party modules the graded code may use (an own-code rule), an allow-list: its
            sandbox holds these, what they require and the standard library; every other installed module is absent
            (``sandbox.paths_outside``, ``sandbox.Isolation.kept_modules``), so no import of it succeeds.
            ``None``: the whole environment (the homework imports ``course_lib``).
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
    sandbox_modules: tuple[str, ...] | None = None

    @property
    def graded_on_data(self) -> bool:
        """True when a checkpoint is evaluated on the grading data (its mIoU decides checks)."""
        return self.checkpoint is not None
