"""The hidden checks as pytest tests, one per autograded cell, against one submission folder.

    pytest autograder/standalone --submission submitted/ada/segmentation_hw --json ada.json
    pytest autograder/standalone --assignment segmentation_concepts --submission submitted/ada/segmentation_concepts

The tests are parametrised by the assignment's declared checks (``conftest.pytest_generate_tests``).
"""


def test_check(verdict, grade_id):
    result = verdict.checks[grade_id]
    assert result.passed, f"{grade_id}: {result.message}"
