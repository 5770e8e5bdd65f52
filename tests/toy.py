"""A toy assignment for the tests of the grader's own wing (judge, record, rendering, gradebook): declared here and
nowhere else, small enough that nbgrader releases it in seconds and the judge grades it without a trained model.

It has one code cell (``double``), one autograded check of 2 points (``test_double``) with a hidden test, and two
written answers (``q1``, 3 points; ``q2``, 1 point), as a real assignment has them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.assignment import Assignment, CheckContext
from autograder.course import Course

REPO = Path(__file__).resolve().parents[1]
NAME = "toy"
NOTEBOOK = f"{NAME}.ipynb"

PROBES = '''
def run(ns, spec):
    if "double" not in ns:
        return {"double": {"error": "double is not defined (its cell failed or is still the stub)"}}
    return {"double": {"outputs": [float(ns["double"](x)) for x in (0.0, 1.5, -2.0)]}}
'''

SOLUTION = "def double(x):\n    ### BEGIN SOLUTION\n    return x + x\n    ### END SOLUTION\n"
TEST = "assert double(2) == 4\n### BEGIN HIDDEN TESTS\nassert double(-1) == -2\n### END HIDDEN TESTS\n"
ANSWERS = {"q1": "Adding a number to itself.", "q2": "Twice."}


def check_double(obs: dict, ctx: CheckContext) -> str:
    data = obs.get("double") or {"error": obs.get("sandbox_error", "no observation")}
    if "error" in data:
        raise AssertionError(data["error"])
    if data["outputs"] != [0.0, 3.0, -4.0]:
        raise AssertionError(f"double(0, 1.5, -2) gave {data['outputs']}, expected [0.0, 3.0, -4.0]")
    return "double doubles"


def toy_assignment(folder: Path) -> Assignment:
    """The toy's declaration; its probes file is written into ``folder``."""
    probes = Path(folder) / "toy_probes.py"
    probes.write_text(PROBES)
    return Assignment(name=NAME, notebook=NOTEBOOK, code_cells=("double_cell",), checks={"test_double": check_double},
                      points={"test_double": 2}, probes_file=probes)


def _meta(grade_id: str, **flags) -> dict:
    return {"nbgrader": {"grade_id": grade_id, "grade": False, "solution": False, "locked": False,
                         "schema_version": 3, **flags}}


def source_notebook() -> nbformat.NotebookNode:
    """The instructor's notebook: solution, hidden test, model answers."""
    return new_notebook(cells=[
        new_markdown_cell("# A toy assignment", metadata=_meta("intro", locked=True)),
        new_code_cell(SOLUTION, metadata=_meta("double_cell", solution=True)),
        new_code_cell(TEST, metadata=_meta("test_double", grade=True, locked=True, points=2)),
        new_markdown_cell(ANSWERS["q1"], metadata=_meta("q1", grade=True, solution=True, points=3)),
        new_markdown_cell(ANSWERS["q2"], metadata=_meta("q2", grade=True, solution=True, points=1)),
    ])


def toy_course(target: Path) -> Course:
    """A course at ``target`` with the repository's ``nbgrader_config.py`` and the toy released by nbgrader (its
    gradebook knows the toy's cells and points)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from autograder.course import nbgrader_config

    (target / "source" / NAME).mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", target / "nbgrader_config.py")
    nbformat.write(source_notebook(), target / "source" / NAME / NOTEBOOK)
    course = Course(target.resolve())
    config = nbgrader_config(course.root)
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.db_url = course.db_url
    result = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config).generate_assignment(
        NAME, force=True, create=True)
    assert result["success"], result.get("error")
    return course


def submit(course: Course, student: str, code: str | None = None, answered: tuple[str, ...] = ("q1",),
           timestamp: str | None = None) -> Path:
    """A student's submission: the release with ``code`` as the code cell (default: the solution) and the answers in
    ``answered`` filled in; ``timestamp`` goes into ``timestamp.txt`` as ``collect`` writes it."""
    nb = nbformat.read(course.root / "release" / NAME / NOTEBOOK, as_version=4)
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells}
    cells["double_cell"].source = code if code is not None else "def double(x):\n    return x + x\n"
    for gid in answered:
        cells[gid].source = ANSWERS[gid]
    folder = course.root / "submitted" / student / NAME
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / NOTEBOOK)
    if timestamp is not None:
        (folder / "timestamp.txt").write_text(timestamp)
    return folder
