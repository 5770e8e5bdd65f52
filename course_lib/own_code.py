"""The own-code rule of the concepts assignment: a graded cell is written with torch and math alone.

``course_lib``, ``torchvision`` and ``torchmetrics`` hold finished versions of several exercises (torchvision's
RoIAlign and focal loss, course_lib's IoU, losses and upsampling blocks), so a graded cell that calls them earns
nothing for its topic. (The grader's oracles of the exercises themselves live in ``autograder.oracles``, which
students never receive.) What counts as using one, exactly:

1. an ``import`` or ``from ... import`` of ``course_lib``, ``torchvision`` or ``torchmetrics`` (any submodule);
2. reading one of the names the notebook's set-up cell binds to an oracle (``losses``, ``metrics``, ``models``,
   ``course_lib``, ``torchvision``, ``torchmetrics``) where the cell itself does not bind that name: in the
   function (or an enclosing one) or at the top of the cell.

A local variable that happens to be called ``losses``, ``metrics`` or ``models`` (an argument, an assignment, a
loop variable) is the student's own object and is never flagged. Docstrings and comments are never read.
The grader applies ``oracle_uses`` to the cell's source in its own process; students run the same function in
the notebook's self-check cell.
"""

from __future__ import annotations

import ast

ORACLE_MODULES: tuple[str, ...] = ("course_lib", "torchvision", "torchmetrics")
# What the grader's sandbox of a concepts cell holds besides the standard library (and what these require): an
# allow-list, so that any other installed package (pycocotools, the COCO reference of mask AP, say) is absent there.
SANDBOX_MODULES: tuple[str, ...] = ("torch", "numpy")
SETUP_ORACLE_NAMES: frozenset[str] = frozenset({"losses", "metrics", "models", *ORACLE_MODULES})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _children_in_scope(node: ast.AST):
    """Every node under ``node`` that belongs to its scope (nested functions, lambdas and classes excluded)."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, _SCOPES):
            yield from _children_in_scope(child)


def _bound_names(scope: ast.AST) -> set[str]:
    """Names that ``scope`` binds itself: arguments, assignment/loop/with/except targets, imports, defs."""
    names: set[str] = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = scope.args
        names |= {arg.arg for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if arg is not None}
    for node in _children_in_scope(scope):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Global):
            names -= set(node.names)
    return names


def _oracle_reads(scope: ast.AST, enclosing: list[set[str]]) -> set[str]:
    bound = enclosing + [_bound_names(scope)]
    used: set[str] = set()
    for node in _children_in_scope(scope):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in SETUP_ORACLE_NAMES:
            if not any(node.id in names for names in bound):
                used.add(node.id)
        elif isinstance(node, _SCOPES):
            used |= _oracle_reads(node, bound)
    return used


def oracle_uses(source: str) -> set[str]:
    """The oracle modules or set-up names that a cell's code uses, by the rule in this module's docstring.

    Args:
        source: the cell's Python source (IPython magics are not Python: a cell that does not parse uses nothing).
    Returns:
        A set of module or set-up names, empty when the cell follows the rule.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            used |= {a.name.split(".")[0] for a in node.names if a.name.split(".")[0] in ORACLE_MODULES}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ORACLE_MODULES:
            used.add(node.module.split(".")[0])
    return used | _oracle_reads(tree, [])


def own_code_problems(cells: dict[str, str]) -> dict[str, str]:
    """``{grade_id: message}`` for every graded cell that breaks the own-code rule.

    Args:
        cells: graded cell id → the cell's source (e.g. from ``notebook_solution_cells``).
    """
    problems = {}
    for grade_id, source in sorted(cells.items()):
        used = oracle_uses(source)
        if used:
            problems[grade_id] = (f"uses {sorted(used)}: write it with torch and math alone (course_lib, torchvision "
                                  "and torchmetrics are the grader's oracles; a cell that uses them earns nothing)")
    return problems


def notebook_solution_cells(path: str) -> dict[str, str]:
    """``{grade_id: source}`` of the code cells a student writes in (nbgrader ``solution`` cells) of a saved notebook.

    Args:
        path: the ``.ipynb`` file (save the notebook first: this reads the file, not the running kernel).
    """
    import nbformat
    from nbgrader.utils import is_solution

    notebook = nbformat.read(path, as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in notebook.cells
            if cell.cell_type == "code" and is_solution(cell)}
