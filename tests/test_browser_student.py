"""A student's first hour in JupyterLab, in headless Chromium (``tests/browser.py``): the release notebook opens
with the student's tools only (no formgrader, no exchange, no empty "Nbgrader" menu), the set-up and preview cells
run, the untouched stub's check says what to do, a correct class typed into the cell passes its check, the Validate
button lists what is still failing, and the answers check tells an answer typed but not saved from one not written.
A second test trains a tiny model in a notebook, saves it and opens it again: its progress is text, never a broken
widget.

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
    # JupyterLab saves by itself every 120 s; off here, so that what is saved is what the test saves, at any speed
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text('{"autosave": false}')
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
        menus = nb.page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
        assert "File" in menus and "Nbgrader" not in menus, menus  # nor nbgrader's menu, which would stay empty
        assert http_status(lab.url("formgrader")) == 404  # nor served
        assert http_status(lab.url("courses")) == 404  # nor the exchange's course list
        import nbgrader

        assert http_status(lab.url(f"nbgrader_version?version={nbgrader.__version__}")) == 200  # Validate's is

        nb.run(_index("setup") - 1)  # MODE / DATA / IMAGE_SIZE
        setup = nb.run(_index("setup"))
        assert "training on cpu" in setup and "QUICK mode" in setup and "val: synthetic" in setup, setup
        assert re.search(r"seed \d+ \(your own, from your login", setup), setup  # not the course's seed 0
        assert "tiers: 0.15 (target), 0.25 (good), 0.35 (excellent)" in setup, setup
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
        nb.page.locator(".jp-Dialog-footer button").last.click()

        # an answer typed after the last save: the answers check says the saved file is behind the screen
        nb.run(_index("show_data"))  # a cell run after the last save
        nb.set_markdown(_index("q2_tiers"), "My model reaches the excellent tier: " + "its mIoU is well above it. " * 3)
        answers = _index("test_answers_complete")
        said = nb.run(answers)
        nb.shot("answers check before saving")
        assert "older than the last cell you ran" in said and "Save the notebook (Ctrl+S)" in said, said
        assert "Q2: still the placeholder" in said and "Q12: still the placeholder" in said and "q12_" not in said
        nb.save()
        said = nb.run(answers)
        nb.shot("answers check after saving")
        assert "Q2:" not in said and "Q3: still the placeholder" in said and "older than" not in said, said


PROGRESS_CELL = """from course_lib.data import load_synthetic
from course_lib.models import build_model
from course_lib.train import TrainConfig, fit

history = fit(build_model("fcn", width=8), load_synthetic("train", num_images=48), load_synthetic("val", num_images=8),
              TrainConfig(num_epochs=2, batch_size=8, progress=True))"""


def test_training_progress_is_text_that_a_saved_notebook_keeps(student_lab, tmp_path):
    """Training shows its progress as one line of text updated in place; saved and opened again (as after a restart,
    or in the feedback) the notebook shows that line and one line per epoch, and no "Error displaying widget"."""
    lab, work = student_lab
    from course_lib.student_setup import kernel_language_info

    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
              "language_info": kernel_language_info()}  # no kernel dialog, no "unsaved changes" on opening
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROGRESS_CELL)], metadata=kernel),
                   work / "progress.ipynb")
    with browser_page(tmp_path / "shots") as nb:
        nb.open(lab.url("lab/tree/progress.ipynb"))
        nb.wait_for_kernel()
        said = nb.run(0)
        nb.shot("trained")
        took = r"(\d+ s|\d+\.\d min)"  # seconds under 90 s, else minutes: the machine and its load decide which
        assert re.search(rf"trained 2 epochs \(12 steps of 8 images\) in {took}\n", said) and "epoch   2" in said, said
        nb.save()
        nb.page.reload()
        nb.page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        nb.page.locator(".jp-OutputArea-output", has_text="trained 2 epochs").wait_for()
        nb.shot("opened again")
        body = nb.page.locator("body").inner_text()
        assert "trained 2 epochs" in body and "epoch   1" in body and "Error displaying widget" not in body
    saved = nbformat.read(work / "progress.ipynb", as_version=4)
    kinds = {kind for output in saved.cells[0].outputs for kind in output.get("data", {})}
    assert kinds == {"text/plain"}, kinds  # no application/vnd.jupyter.widget-view+json
    assert not any(output.get("name") == "stderr" for output in saved.cells[0].outputs)
