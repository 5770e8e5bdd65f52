"""Planted copies, for the demo and the tests: what a student who copies does to hide it.

``disguise_code`` renames every local variable and reformats the code (``ast.unparse``: other spacing, line breaks
and quotes, no comments), keeping the names the docstrings require (classes, attributes, arguments), so the copy
still earns the original's points. ``disguise_notebook`` does that to a notebook's graded code cells;
``copied_hand_in`` makes a copier's files from another student's (for an LMS zip, as ``make demo`` builds), and
``plant_copy`` a copied folder in a course's ``submitted/``.
"""

from __future__ import annotations

import ast
import builtins
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


def copied_hand_in(files: dict[str, bytes], assignment, checkpoint: str = "copy",
                   first_name: str = "my_model.pt") -> dict[str, bytes]:
    """A copier's hand-in made from another student's (file name → bytes, as in an LMS zip or ``submitted/``).

    The notebook's graded code cells are disguised (``disguise_code``). The checkpoint and results file are copied
    byte for byte (``checkpoint="copy"``), left out (``"none"``), or the checkpoint is loaded and saved again as
    ``first_name`` before taking the hand-in name (``"resave"``: new bytes, the same tensors, and an inner archive
    name that gives the first name away).

    Args:
        assignment: the ``autograder.assignment.Assignment``.
    """
    import io
    import tempfile

    import torch

    out = {}
    nb = nbformat.reads(files[assignment.notebook].decode("utf-8"), as_version=4)
    out[assignment.notebook] = nbformat.writes(disguise_notebook(nb, set(assignment.code_cells))).encode("utf-8")
    if not assignment.checkpoint or checkpoint == "none":
        return out
    for name in (assignment.checkpoint, assignment.results_file):
        if name and name in files:
            out[name] = files[name]
    if checkpoint == "resave" and assignment.checkpoint in files:
        payload = torch.load(io.BytesIO(files[assignment.checkpoint]), weights_only=True)
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(payload, Path(tmp) / first_name)
            out[assignment.checkpoint] = (Path(tmp) / first_name).read_bytes()
    return out


def plant_copy(course_root: Path, assignment, original: str, copier: str, checkpoint: str = "copy") -> Path:
    """``submitted/<copier>/<assignment>/`` made from ``original``'s folder by ``copied_hand_in`` (a re-saved
    checkpoint is first saved as ``<original>_weights.pt``). Returns the copier's folder."""
    source = Path(course_root) / "submitted" / original / assignment.name
    target = Path(course_root) / "submitted" / copier / assignment.name
    files = {p.name: p.read_bytes() for p in source.iterdir() if p.is_file() and not p.is_symlink()}
    target.mkdir(parents=True, exist_ok=True)
    for name, data in copied_hand_in(files, assignment, checkpoint, f"{original}_weights.pt").items():
        (target / name).write_bytes(data)
    return target
