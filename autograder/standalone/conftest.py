"""pytest options of the standalone checks: ``pytest autograder/standalone --submission DIR [--json OUT]``."""

import json
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--submission", action="store", default=None, help="a student's submission folder")
    parser.addoption("--assignment", action="store", default="segmentation_hw")
    parser.addoption("--json", action="store", default=None, help="where to write the structured result")


def pytest_generate_tests(metafunc):
    """One test per autograded cell of the assignment named by ``--assignment``."""
    if "grade_id" in metafunc.fixturenames:
        from autograder.checks import get_assignment

        metafunc.parametrize("grade_id", sorted(get_assignment(metafunc.config.getoption("--assignment")).checks))


@pytest.fixture(scope="session")
def verdict(request):
    from autograder.judge import judge_submission

    folder = request.config.getoption("--submission")
    if folder is None:
        pytest.skip("pass --submission DIR to check a submission")
    result = judge_submission(Path(folder), request.config.getoption("--assignment"))
    out = request.config.getoption("--json") or str(Path(folder) / "grader_result.json")
    Path(out).write_text(json.dumps(result.to_dict(), indent=2))
    return result
