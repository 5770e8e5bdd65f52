"""The student's JupyterLab shows the student's tools only (``course_lib.student_setup``): nbgrader's formgrader,
create-assignment and exchange extensions and its menu are off, its Validate button is on. The browser test
(``tests/test_browser_student.py``) checks the same on a real JupyterLab server: what it serves and what the page
shows."""

from __future__ import annotations

import json

from course_lib.student_setup import configure


def test_the_student_environment_has_validate_and_no_instructor_or_exchange_tools(tmp_path, monkeypatch):
    config_dir = tmp_path / "jupyter_config"
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config_dir))  # the user level: this test's folder
    lines = configure(level="user")
    assert "disabled @jupyter/nbgrader:formgrader" in lines and "enabled @jupyter/nbgrader:validate-assignment" in lines
    page = json.loads((config_dir / "labconfig" / "page_config.json").read_text())
    assert set(page["disabledExtensions"]) == {f"@jupyter/nbgrader:{n}" for n in
                                               ("formgrader", "create-assignment", "assignment-list", "course-list", "menu")} \
        | {"@jupyterlab/apputils-extension:announcements"}  # JupyterLab's news prompt
    server = json.loads((config_dir / "jupyter_server_config.json").read_text())["ServerApp"]["jpserver_extensions"]
    assert server["nbgrader.server_extensions.formgrader"] is False and server["nbgrader.server_extensions.course_list"] is False
    assert server["nbgrader.server_extensions.validate_assignment"] is True


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
