"""An assignment is one declaration (``autograder.assignment.Assignment``): a toy third assignment, declared in this
file only, is graded by the real judge and sandbox, which know nothing else about it."""

import nbformat
import pytest

from autograder.assignment import Assignment, UnknownAssignment
from autograder.checks import ASSIGNMENTS, get_assignment
from autograder.judge import judge_submission

TOY_PROBES = '''
def run(ns, spec):
    if "double" not in ns:
        return {"double": {"error": "double is not defined (its cell failed or is still the stub)"}}
    return {"double": {"outputs": [float(ns["double"](x)) for x in (0.0, 1.5, -2.0)]}}
'''


def check_double(obs: dict, ctx: dict) -> str:
    data = obs.get("double") or {"error": obs.get("sandbox_error", "no observation")}
    if "error" in data:
        raise AssertionError(data["error"])
    if data["outputs"] != [0.0, 3.0, -4.0]:
        raise AssertionError(f"double(0, 1.5, -2) gave {data['outputs']}, expected [0.0, 3.0, -4.0]")
    return "double doubles"


@pytest.fixture()
def toy(tmp_path):
    probes = tmp_path / "toy_probes.py"
    probes.write_text(TOY_PROBES)
    return Assignment(name="toy", notebook="toy.ipynb", code_cells=("double_cell",),
                      checks={"test_double": check_double}, probes_file=probes)


def submit(folder, code: str):
    folder.mkdir(parents=True, exist_ok=True)
    answer = nbformat.v4.new_code_cell(code, metadata={"nbgrader": {"grade_id": "double_cell", "solution": True,
                                                                    "grade": False, "locked": False}})
    test = nbformat.v4.new_code_cell("assert double(2) == 4", metadata={"nbgrader": {
        "grade_id": "test_double", "grade": True, "solution": False, "locked": True, "points": 1}})
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
