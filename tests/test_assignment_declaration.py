"""An assignment is one declaration (``autograder.assignment.Assignment``): a toy third assignment, declared in the
tests only (``tests/toy.py``), is graded by the real judge and sandbox, which know nothing else about it; and each
course assignment's notebooks give its autograded cells the points its declaration gives them."""

import nbformat
import pytest

from autograder.assignment import UnknownAssignment
from autograder.checks import ASSIGNMENTS, get_assignment
from autograder.judge import judge_submission
from notebooks import REPO, cells_by_id
from toy import toy_assignment


@pytest.fixture()
def toy(tmp_path):
    return toy_assignment(tmp_path)


def submit(folder, code: str):
    folder.mkdir(parents=True, exist_ok=True)
    answer = nbformat.v4.new_code_cell(code, metadata={"nbgrader": {"grade_id": "double_cell", "solution": True,
                                                                    "grade": False, "locked": False}})
    test = nbformat.v4.new_code_cell("assert double(2) == 4", metadata={"nbgrader": {
        "grade_id": "test_double", "grade": True, "solution": False, "locked": True, "points": 2}})
    nbformat.write(nbformat.v4.new_notebook(cells=[answer, test]), folder / "toy.ipynb")
    return folder


@pytest.mark.slow
def test_a_toy_assignment_is_graded_both_ways_from_its_declaration_alone(toy, tmp_path):
    right = judge_submission(submit(tmp_path / "right", "def double(x):\n    return x + x\n"), toy)
    assert right.status == "graded" and right.checks["test_double"].passed, right.checks
    wrong = judge_submission(submit(tmp_path / "wrong", "def double(x):\n    return x * x\n"), toy)
    assert not wrong.checks["test_double"].passed and "expected [0.0, 3.0, -4.0]" in wrong.checks["test_double"].message
    missing = judge_submission(submit(tmp_path / "stub", "raise NotImplementedError()\n"), toy)
    assert not missing.checks["test_double"].passed and "not defined" in missing.checks["test_double"].message


def test_the_registry_holds_each_course_assignment_and_names_the_known_ones():
    assert set(ASSIGNMENTS) == {"segmentation_hw", "segmentation_concepts"}
    for name, spec in ASSIGNMENTS.items():
        assert spec.name == name and spec.notebook == f"{name}.ipynb" and spec.probes_file.is_file()
        assert set(spec.code_cells).isdisjoint(spec.checks)
    assert get_assignment("segmentation_hw").graded_on_data
    assert not get_assignment("segmentation_concepts").graded_on_data
    with pytest.raises(UnknownAssignment, match="segmentation_concepts"):
        get_assignment("segmentation_homework")


def test_the_command_line_turns_grader_errors_into_exit_2_with_the_message(tmp_path, capsys):
    from autograder.cli import main

    assert main(["--course", str(tmp_path), "grade", "segmentation_hw"]) == 2
    assert "is not a course directory" in capsys.readouterr().err
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    assert main(["--course", str(tmp_path), "grade", "segmentation_homework"]) == 2
    assert "the grader knows ['segmentation_concepts', 'segmentation_hw']" in capsys.readouterr().err
    assert main(["--course", str(tmp_path), "collect", "segmentation_hw", str(tmp_path / "none.zip")]) == 2
    assert "no such zip file" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_the_notebooks_points_are_the_declarations(name):
    """Points are declared once, in ``autograder/checks/<assignment>.py``; the source notebook's nbgrader metadata
    (what the gradebook gets) and the committed release must say the same, and every autograded cell has a check."""
    spec = get_assignment(name)
    for folder in ("source", "release"):
        cells = cells_by_id(nbformat.read(REPO / folder / name / spec.notebook, as_version=4))
        autograded = {gid: float(c.metadata["nbgrader"]["points"]) for gid, c in cells.items()
                      if c.metadata["nbgrader"].get("grade") and not c.metadata["nbgrader"].get("solution")}
        assert autograded == {gid: float(points) for gid, points in spec.points.items()}, folder
    assert set(spec.points) == set(spec.checks)


def test_the_environment_is_read_in_one_place(monkeypatch, tmp_path):
    from autograder import config

    monkeypatch.setenv(config.COURSE_ROOT, str(tmp_path))
    monkeypatch.setenv(config.GRADEBOOK_URL, "postgresql://ta@db/course")
    monkeypatch.delenv(config.SCRATCH, raising=False)
    monkeypatch.setenv(config.TERM_SECRET, "")
    env = config.environment()
    assert env.course_root == tmp_path and env.gradebook_url == "postgresql://ta@db/course"
    assert env.scratch.name == "segmentation-grading" and env.term_secret is None
    for module in ("autograder/course.py", "autograder/judge.py", "autograder/sandbox.py", "autograder/term.py",
                   "autograder/release.py", "autograder/pipeline.py", "nbgrader_config.py"):
        assert "os.environ.get(" not in (REPO / module).read_text(), module
