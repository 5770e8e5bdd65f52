"""The student's JupyterLab shows the student's tools only (``course_lib.student_setup``): nbgrader's formgrader,
create-assignment and exchange extensions are off, its Validate button is on; checked on a real JupyterLab server
(the browser test, ``tests/test_browser_student.py``, sees the same from the page)."""

from __future__ import annotations

import json

import pytest

from browser import JupyterLab, http_status
from course_lib.student_setup import configure

pytestmark = pytest.mark.slow


def test_the_student_environment_has_validate_and_no_instructor_or_exchange_tools(tmp_path, monkeypatch):
    config_dir = tmp_path / "jupyter_config"
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config_dir))  # the user level: this test's folder
    lines = configure(level="user")
    assert "disabled @jupyter/nbgrader:formgrader" in lines and "enabled @jupyter/nbgrader:validate-assignment" in lines
    page = json.loads((config_dir / "labconfig" / "page_config.json").read_text())
    assert set(page["disabledExtensions"]) == {f"@jupyter/nbgrader:{n}" for n in
                                               ("formgrader", "create-assignment", "assignment-list", "course-list")}
    (tmp_path / "work").mkdir()
    lab = JupyterLab(tmp_path / "work", config_dir)
    try:
        assert http_status(lab.url("formgrader")) == 404  # the instructor's tool is not served
        assert http_status(lab.url("courses")) == 404  # nor the exchange's course list
        import nbgrader

        assert http_status(lab.url(f"nbgrader_version?version={nbgrader.__version__}")) == 200  # Validate's is
    finally:
        lab.stop()


def test_course_notebooks_are_stamped_with_this_kernels_description_and_nothing_else(tmp_path):
    import shutil

    import nbformat

    from course_lib.student_setup import kernel_language_info, stamp_notebooks
    from notebooks import REPO

    (tmp_path / "segmentation_hw").mkdir()
    release = REPO / "release" / "segmentation_hw" / "segmentation_hw.ipynb"
    shutil.copy(release, tmp_path / "segmentation_hw")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    shutil.copy(release, tmp_path / ".ipynb_checkpoints")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "scratch.ipynb")  # not a course notebook
    assert stamp_notebooks(tmp_path) == [tmp_path / "segmentation_hw" / "segmentation_hw.ipynb"]
    stamped = nbformat.read(tmp_path / "segmentation_hw" / "segmentation_hw.ipynb", as_version=4)
    original = nbformat.read(release, as_version=4)
    assert stamped.metadata["language_info"] == kernel_language_info()
    assert stamped.metadata["language_info"]["version"].count(".") == 2  # the full version the kernel reports
    assert [c.source for c in stamped.cells] == [c.source for c in original.cells]
    assert [c.metadata for c in stamped.cells] == [c.metadata for c in original.cells]  # nbgrader's checksums hold
    assert stamp_notebooks(tmp_path) == []  # once is enough
