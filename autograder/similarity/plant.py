"""Planted copies, for the demo and the tests: what a student who copies does to hide it.

``disguise_code`` renames every local variable and reformats the code (``ast.unparse``: other spacing, line breaks
and quotes, no comments), keeping the names the docstrings require (classes, attributes, arguments), so the copy
still earns the original's points. ``disguise_notebook`` does that to a notebook's graded code cells;
``plant_copy`` makes a whole copied submission in a course's ``submitted/`` folder.
"""

from __future__ import annotations

import ast
import builtins
import shutil
from pathlib import Path

import nbformat


class _Renamer(ast.NodeTransformer):
    """Renames the variables a function body assigns (not arguments, attributes, classes or module names)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def visit_FunctionDef(self, node: ast.FunctionDef):
        local = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        args = {a.arg for a in node.args.args + node.args.kwonlyargs}
        for name in sorted(local - args - set(dir(builtins))):
            self.names.setdefault(name, f"tmp_{len(self.names)}_{name[:1]}")
        self.generic_visit(node)
        return node

    def visit_Name(self, node: ast.Name):
        if node.id in self.names:
            node.id = self.names[node.id]
        return node


def disguise_code(source: str) -> str:
    """The same program with its local variables renamed and every line reformatted (comments dropped)."""
    tree = ast.parse(source)
    tree = _Renamer().visit(tree)
    return "# my own implementation\n" + ast.unparse(ast.fix_missing_locations(tree)).replace("    ", "  ") + "\n"


def disguise_notebook(nb, code_cells) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose cells with the grade ids ``code_cells`` are disguised (``disguise_code``)."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in code_cells and cell.cell_type == "code":
            cell.source = disguise_code(cell.source)
    return nb


def plant_copy(course_root: Path, assignment, original: str, copier: str, checkpoint: str = "copy") -> Path:
    """Makes ``submitted/<copier>/<assignment>/`` from ``original``'s hand-in: the notebook disguised; the
    checkpoint and results file copied byte for byte (``checkpoint="copy"``), left out (``"none"``), or loaded
    and saved again under another name before being renamed to the hand-in name (``"resave"``: new bytes and
    a new serialization id, the same tensors, and an inner archive name that gives the first name away).

    Args:
        assignment: the ``autograder.assignment.Assignment``.
    Returns:
        The copier's folder.
    """
    import torch

    source = Path(course_root) / "submitted" / original / assignment.name
    target = Path(course_root) / "submitted" / copier / assignment.name
    target.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(source / assignment.notebook, as_version=4)
    nbformat.write(disguise_notebook(nb, set(assignment.code_cells)), target / assignment.notebook)
    if assignment.checkpoint and checkpoint != "none":
        for name in (assignment.checkpoint, assignment.results_file):
            if name and (source / name).is_file():
                shutil.copyfile(source / name, target / name)
        if checkpoint == "resave":
            payload = torch.load(target / assignment.checkpoint, weights_only=True)
            first = target / f"{original}_weights.pt"
            torch.save(payload, first)
            first.replace(target / assignment.checkpoint)
    return target
