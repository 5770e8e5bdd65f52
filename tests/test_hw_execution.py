"""Assignment 1 executed: the source runs top to bottom in QUICK mode and reaches the excellent tier,
`nbgrader validate` passes on it, and the untouched release runs to the end with failing tests."""

import json
import shutil

import nbformat
import pytest

from course_lib.train.recipes import QUICK
from notebooks import REPO, error_outputs, nbgrader, stream_outputs

pytestmark = pytest.mark.slow


def test_source_runs_top_to_bottom_in_quick_mode(executed_hw_course):
    """The executed source (this run's, or the cached one that the same code made) has no error, nothing on stderr,
    and the QUICK recipe's figures: the reference at >= 0.40 with a fixed number of epochs, the variant far lower."""
    folder = executed_hw_course / "source" / "segmentation_hw"
    nb = nbformat.read(folder / "segmentation_hw.ipynb", as_version=4)
    assert error_outputs(nb) == []
    assert stream_outputs(nb, "stderr") == "", "a cell wrote to stderr (nbgrader would zero a graded cell)"
    main = json.loads((folder / "segmentation_hw_results.json").read_text())
    variant = json.loads((folder / "segmentation_hw_nodown_results.json").read_text())
    assert main["metrics"]["miou"] >= 0.40, f"the reference missed the QUICK target of 0.40: {main['metrics']}"
    assert variant["metrics"]["miou"] < main["metrics"]["miou"] - 0.05, "without downsampling should be clearly lower"
    epochs = QUICK.train.num_epochs
    assert [r["epoch"] for r in main["history"]["records"]] == list(range(1, epochs + 1))
    assert [r["epoch"] for r in variant["history"]["records"]] == list(range(1, epochs + 1))
    print("QUICK figures:", json.dumps({"with": main["metrics"], "without": variant["metrics"]}))


def test_nbgrader_validate_passes_on_the_executed_source(executed_hw_course):
    proc = nbgrader("validate", "source/segmentation_hw/segmentation_hw.ipynb", cwd=executed_hw_course, check=False)
    assert proc.returncode == 0 and "Success! Your notebook passes all the tests." in proc.stdout + proc.stderr, \
        proc.stdout[-3000:] + proc.stderr[-3000:]


def test_release_runs_to_the_end_with_failing_tests(tmp_path):
    shutil.copy(REPO / "release" / "segmentation_hw" / "segmentation_hw.ipynb", tmp_path / "segmentation_hw.ipynb")
    shutil.copy(REPO / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    proc = nbgrader("validate", "--invert", "segmentation_hw.ipynb", cwd=tmp_path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Success! The notebook does not pass any tests." in out, out[-3000:]
