"""The hidden tests of the source notebooks: each one calls the judge's check of its own cell.

A graded cell of a source notebook ends with a hidden region (stripped from the release by nbgrader) that holds
exactly ``hidden_test_source(assignment, grade_id)``: two lines that run ``judge_submission`` on the saved
notebook's folder and assert that cell's verdict. So when an instructor runs a source notebook (``autograder
release``, ``nbgrader validate``), every check runs the same code, on the same probes, as the grading of a student;
there is no second copy of a check to drift (``tests/test_hw_notebook.py`` proves each region is that call).

The judge runs once per saved state of the submission (notebook, checkpoint and results files): the hidden cells
of one run share its verdict. It reads the *saved* notebook, as it does for a student.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from autograder.assignment import Assignment
from autograder.checks import get_assignment


def hidden_test_source(assignment: str, grade_id: str) -> str:
    """The code of the hidden region of ``grade_id``'s cell (without the BEGIN/END marker lines)."""
    return f'from autograder.hidden import hidden_check\nhidden_check("{assignment}", "{grade_id}")\n'


def _saved_state(folder: Path, spec: Assignment) -> tuple:
    names = [spec.notebook, *([spec.checkpoint, spec.results_file] if spec.graded_on_data else [])]
    return tuple((name, p.stat().st_mtime_ns, p.stat().st_size) if (p := folder / name).is_file() else (name,)
                 for name in names)


@lru_cache(maxsize=1)  # one verdict kept: the latest saved state
def _verdict(assignment: str, folder: Path, saved_state: tuple):
    from autograder.judge import judge_submission

    return judge_submission(folder, assignment)


def hidden_check(assignment: str, grade_id: str, folder: str | Path = ".") -> str:
    """Asserts that the judge passes check ``grade_id`` of ``assignment`` on the submission saved in ``folder``
    (default: the notebook's working directory); returns the check's message, which is printed (stdout)."""
    spec = get_assignment(assignment)
    if grade_id not in spec.checks:
        raise KeyError(f"{assignment} declares no check {grade_id!r}; its checks are {sorted(spec.checks)}")
    folder = Path(folder).resolve()
    result = _verdict(spec.name, folder, _saved_state(folder, spec)).checks[grade_id]
    assert result.passed, f"{grade_id} (the grader's check, on the saved notebook): {result.message}"
    print(f"{grade_id}: {result.message}")
    return result.message
