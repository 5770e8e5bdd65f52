"""Helpers for tests that read, execute and compare nbgrader notebooks."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from autograder.checks import ASSIGNMENTS as DECLARED
from autograder.leaks import Delimiters, regions

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = tuple(DECLARED)  # every assignment the grader declares


def venv_env(**extra: str) -> dict:
    """The environment for nbgrader subprocesses: the interpreter's bin/ first on PATH (nbgrader calls alembic)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("NBGRADER_EXECUTION", None)
    env.update(extra)
    return env


def nbgrader(*args: str, cwd: Path, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=venv_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def make_course(tmp: Path, assignments=ASSIGNMENTS) -> Path:
    """A throw-away course directory (``Course.create``): nbgrader_config.py and copies of the source assignments."""
    from autograder.course import Course

    return Course.create(tmp / "course", list(assignments)).root


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def cells_by_id(nb) -> dict:
    return {grade_id(c): c for c in nb.cells if grade_id(c)}


def normalized(nb) -> dict:
    """A notebook as JSON with volatile fields removed: cell ids, outputs, execution counts, metadata timestamps."""
    data = json.loads(nbformat.writes(nb))
    for cell in data["cells"]:
        cell.pop("id", None)
        cell.pop("execution_count", None)
        cell.pop("outputs", None)
        cell.get("metadata", {}).pop("execution", None)
    data["metadata"].pop("widgets", None)
    return data


def solution_regions(source: str) -> list[str]:
    return regions(source, Delimiters.of_course(REPO).solution)


def hidden_regions(source: str) -> list[str]:
    return regions(source, Delimiters.of_course(REPO).hidden)


def reference_mismatches(notebook: Path, reference: Path, blocks: dict[str, str]) -> list[str]:
    """grade_ids whose solution cell differs (docstrings, comments and markers aside) from the reference module's
    ``# BEGIN <name>`` ... ``# END <name>`` block; ``blocks`` maps grade_id to block name."""
    cells = cells_by_id(nbformat.read(notebook, as_version=4))
    text = reference.read_text()
    return [gid for gid, name in blocks.items()
            if code_without_docstrings(cells[gid].source)
            != code_without_docstrings(text.split(f"# BEGIN {name}\n")[1].split(f"# END {name}")[0])]


def code_without_docstrings(source: str) -> str:
    """ast.dump of the code with docstrings removed: comments, markers and formatting do not matter."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.Module)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


def execute_notebook(path: Path, timeout: int = 600, env: dict | None = None, fill_table: bool = False):
    """Executes a notebook in its own folder with nbconvert, writes it back with outputs, and returns it.
    ``fill_table``: before each cell, the Q1 answer gets the table of the results saved so far, as a student copies
    the printed table (``fill_results_table``), so the notebook's own table check holds on any kind of CPU (QUICK's
    figures are bit for bit per instruction set: 0.5349 on the AMD machines the source's table comes from, 0.5754 on
    an Intel one with AMX)."""
    from nbconvert.preprocessors import ExecutePreprocessor

    from autograder.course import kernel_config  # the course's kernel settings (an encrypted kernel connection)

    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    os.environ.update(env or {})
    os.environ.pop("NBGRADER_EXECUTION", None) if "NBGRADER_EXECUTION" not in (env or {}) else None
    fill = (lambda **_: fill_results_table(path, nb)) if fill_table else None
    try:
        ExecutePreprocessor(timeout=timeout, kernel_name="python3", config=kernel_config(REPO),
                            on_cell_start=fill).preprocess(nb, {"metadata": {"path": str(path.parent)}})
    finally:
        os.environ.clear()
        os.environ.update(old)
    nbformat.write(nb, path)
    return nb


def fill_results_table(path: Path, nb=None, name: str = "segmentation_hw") -> bool:
    """Writes the results table (from the results file saved next to the notebook) into the Q1 answer of the saved
    notebook, and of ``nb`` (the same notebook in memory) when given; False while there is no results file."""
    from course_lib.submission import results_table

    results = path.parent / f"{name}_results.json"
    if not results.is_file():
        return False
    table = results_table(json.loads(results.read_text())["metrics"])
    saved = nbformat.read(path, as_version=4)
    for target in (saved,) if nb is None else (saved, nb):
        cells_by_id(target)["q1_results_table"].source = table
    nbformat.write(saved, path)
    return True


def stream_outputs(nb, name: str) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


def error_outputs(nb) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]
