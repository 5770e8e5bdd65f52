"""A student's first hour in JupyterLab, in headless Chromium (``tests/browser.py``): the release notebook opens
with the student's tools only, the set-up and preview cells run, the untouched stub's check says what to do, a
correct class typed into the cell passes its check, and the Validate button lists what is still failing.

Screenshots of every step: ``<pytest tmp>/test_a_student_.../shots/``. Run alone:
``.venv/bin/python -m pytest tests/test_browser_student.py``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from browser import JupyterLab, browser_page, http_status, unavailable_reason

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
HW = "segmentation_hw"


def _reference_cell(grade_id: str) -> str:
    """The source notebook's solution of one cell, its solution markers removed (what a correct student types)."""
    nb = nbformat.read(REPO / "source" / HW / f"{HW}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", "", cell.source, flags=re.M)


def _index(grade_id: str) -> int:
    nb = nbformat.read(REPO / "release" / HW / f"{HW}.ipynb", as_version=4)
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.fixture
def student_lab(tmp_path, monkeypatch):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no browser tests: {reason}")
    from course_lib.student_setup import configure, stamp_notebooks

    config = tmp_path / "jupyter_config"
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    work = tmp_path / "work"
    (work / HW).mkdir(parents=True)
    shutil.copy(REPO / "release" / HW / f"{HW}.ipynb", work / HW)
    configure(level="user")  # what the bundle's README has the student run once, in the bundle's folder
    stamp_notebooks(work)
    lab = JupyterLab(work, config)
    yield lab, work
    lab.stop()


def test_a_student_runs_the_notebook_fixes_a_stub_and_validates(student_lab, tmp_path):
    lab, work = student_lab
    with browser_page(tmp_path / "shots") as nb:
        nb.open(lab.url(f"lab/tree/{HW}/{HW}.ipynb"))
        nb.page.wait_for_selector(".jp-Notebook .jp-Cell")
        nb.page.wait_for_function("() => document.querySelector('.jp-Notebook') !== null")
        nb.page.wait_for_timeout(5000)  # the kernel starts and reports its language_info
        nb.shot("opened")
        assert nb.page.locator(".jp-mod-dirty").count() == 0, "a notebook opened untouched is marked unsaved"
        body = nb.page.locator("body").inner_text()
        assert "Error fetching courses" not in body and "exchange directory" not in body
        assert "Jupyter news" not in body  # no prompt about JupyterLab's news feed
        assert nb.page.locator("text=Formgrader").count() == 0  # the instructor's tools are not there
        assert http_status(lab.url("formgrader")) == 404  # nor served
        assert http_status(lab.url("courses")) == 404  # nor the exchange's course list
        import nbgrader

        assert http_status(lab.url(f"nbgrader_version?version={nbgrader.__version__}")) == 200  # Validate's is

        nb.run(_index("setup") - 1)  # MODE / DATA / IMAGE_SIZE
        setup = nb.run(_index("setup"))
        assert "mode: QUICK" in setup and "val: synthetic" in setup, setup
        nb.run(_index("show_data"))
        assert nb.images(_index("show_data")) == 1, "the data preview's figure did not render"
        nb.shot("set-up and preview")

        block, check = _index("residual_block"), _index("test_residual_block")
        nb.run(block)
        message = nb.run(check)
        assert "NotImplementedError" in message and "not written yet: replace this line" in message, message
        nb.shot("stub check")

        nb.set_source(block, _reference_cell("residual_block"))
        nb.run(block)
        passed = nb.run(check)
        assert "ResidualBlock: all visible checks passed." in passed, passed
        nb.shot("residual block passes")

        nb.save()
        nb.page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).click()
        dialog = nb.page.locator(".jp-Dialog-content")
        dialog.wait_for()
        nb.page.locator(".jp-Dialog-content", has_text=re.compile("fail|error|Success", re.I)).wait_for()
        report = dialog.inner_text()
        nb.shot("validate dialog")
        assert "The following cell failed" in report and "net = SegmentationModel(" in report, report
        assert "block = ResidualBlock(8, 8)" not in report  # the fixed cell's check passes now
