"""The hidden checks as pytest tests, one per autograded cell, against one submission folder.

    pytest autograder/standalone --submission submitted/ada/segmentation_hw --json ada.json
"""

import pytest

from autograder.checks.segmentation_hw import CHECKS


@pytest.mark.parametrize("grade_id", sorted(CHECKS))
def test_check(verdict, grade_id):
    result = verdict.checks[grade_id]
    assert result.passed, f"{grade_id}: {result.message}"
