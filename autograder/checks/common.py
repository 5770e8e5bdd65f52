"""What every assignment's checks share: the failure type, the context the judge hands them, partial credit over
weighted parts, and the written-answers check.

A check returns a message (full points), raises ``CheckFailed`` (no points), or, when it is made of weighted parts
(``score_parts``), returns ``PartialCredit``: each part's result as data (``PartScore``: name, points earned, points
available, message), from which its fraction and its message ("shapes (3/3 points): ...; shortcut (0/2 points): ...")
follow. A part's points are in the check's points; a test keeps them adding up to the check's declared points.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

from autograder.assignment import CheckContext
from autograder.inspection import parse
from autograder.sandbox_runner import strip_magics
from course_lib.answers import answer_problems, describe_problems


class CheckFailed(AssertionError):
    """A verdict's failure; its message is what the student reads."""


@dataclass(frozen=True)
class PartScore:
    """One weighted part of a check, scored: ``points`` of ``max_points`` and why (what passed, or what to fix)."""

    name: str
    points: float
    max_points: float
    message: str

    @property
    def passed(self) -> bool:
        return self.points >= self.max_points

    def line(self) -> str:
        return f"{self.name} ({self.points:g}/{self.max_points:g} points): {self.message}"


@dataclass(frozen=True)
class PartialCredit:
    """A check made of weighted parts, scored part by part (all, some or none of them passed)."""

    parts: tuple[PartScore, ...]

    @property
    def fraction(self) -> float:
        total = sum(part.max_points for part in self.parts)
        return sum(part.points for part in self.parts) / total if total else 0.0

    @property
    def message(self) -> str:
        return "; ".join(part.line() for part in self.parts)


@dataclass(frozen=True)
class Part:
    """One weighted part of a check: ``run()`` returns its message or raises ``CheckFailed``."""

    name: str
    points: float
    run: Callable[[], str]


def score_parts(parts: list[Part]) -> PartialCredit:
    """Runs every part (one failing part never hides the others) and scores each: its points when it passes, none
    when it raises (``CheckFailed``, or any error on malformed observations, which fails that part only)."""
    scored = []
    for part in parts:
        try:
            scored.append(PartScore(part.name, part.points, part.points, part.run()))
        except CheckFailed as err:
            scored.append(PartScore(part.name, 0.0, part.points, str(err)))
        except Exception as err:  # malformed observations (a forged file) fail this part only
            scored.append(PartScore(part.name, 0.0, part.points, f"could not be checked ({type(err).__name__}: {err})"))
    return PartialCredit(tuple(scored))


def check_answers_complete(obs: dict, ctx: CheckContext) -> str:
    """Every written answer is filled in (``ctx.answers``: grade id → Markdown source)."""
    problems = answer_problems(ctx.answers)
    if problems:
        raise CheckFailed("; ".join(describe_problems(problems)))  # "Q2: ...; Q10: ...", as the notebook numbers them
    return f"all {len(ctx.answers)} written answers are filled in"


# --- observations that cannot be forged into points ----------------------------------------------------------------

BATCHNORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")  # buffers a state dict may hold


# Ways to bind a name that its source does not show: where a cell uses one, no class is declared unimplemented.
DYNAMIC_NAMES = frozenset({"globals", "locals", "vars", "exec", "eval", "compile", "setattr", "delattr", "__import__",
                           "__dict__", "__builtins__", "builtins", "importlib"})


def forged(ctx: CheckContext, reason: str) -> None:
    """Observations that contradict what the grader knows: the check earns nothing and the TA is told
    (``ctx.flags`` is the verdict's ``flags``)."""
    if reason not in ctx.flags:
        ctx.flags.append(reason)
    raise CheckFailed(f"the observations of your code are inconsistent ({reason}); this check earns nothing and "
                      "the TA was told")


def _is_stub_method(function: ast.FunctionDef) -> bool:
    """The release's stub: after an optional docstring and ``super().__init__(...)``, ``raise NotImplementedError``."""
    body = list(function.body)
    while body and isinstance(body[0], ast.Expr) and (isinstance(body[0].value, ast.Constant)
                                                      or _is_super_init(body[0].value)):
        body.pop(0)
    if not body or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _is_super_init(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"
            and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "super")


def _bindings(tree: ast.AST, name: str) -> list:
    """Every node of ``tree`` that binds ``name`` or changes what it holds (assignments, imports, definitions,
    ``global``, attribute stores on it)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            found.append(node)
        elif isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, (ast.Store, ast.Del)):
            found.append(node)
        elif isinstance(node, ast.alias) and (node.asname or node.name.split(".")[0]) == name:
            found.append(node)
        elif isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            found.append(node)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)) \
                and isinstance(node.value, ast.Name) and node.value.id == name:
            found.append(node)
    return found


def unimplemented_classes(cells: dict[str, str], names: tuple[str, ...]) -> list[str]:
    """Of ``names``, the classes the cells (run in order, as the sandbox does) certainly leave unable to run: not
    defined by any cell that compiles, or defined only as classes whose ``__init__`` or ``forward`` is still the
    release's stub (and the name never rebound, its attributes never set, ``NotImplementedError`` never redefined).
    Read from the source, in the grader's process: no student code runs here."""
    trees = []
    for code in cells.values():
        try:
            trees.append(parse(strip_magics(code)))
        except (SyntaxError, ValueError):
            continue  # this cell raises before it defines anything
    module = ast.Module(body=[stmt for tree in trees for stmt in tree.body], type_ignores=[])
    dynamic = any(isinstance(node, ast.Name) and node.id in DYNAMIC_NAMES or
                  isinstance(node, ast.Attribute) and node.attr in DYNAMIC_NAMES or
                  isinstance(node, ast.alias) and node.name.split(".")[0] in DYNAMIC_NAMES for node in ast.walk(module))
    if dynamic or _bindings(module, "NotImplementedError"):
        return []  # names bound in ways the source does not show: nothing is certain
    stubs = []
    for name in names:
        bound = _bindings(module, name)
        classes = [node for node in bound if isinstance(node, ast.ClassDef)]
        if not bound:
            stubs.append(name)
        elif len(classes) == len(bound) and not classes[-1].decorator_list and not classes[-1].keywords:
            methods = {f.name: f for f in classes[-1].body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
            if any(m in methods and _is_stub_method(methods[m]) for m in ("__init__", "forward")) and \
                    not {"__new__", "__call__", "__getattr__", "__init_subclass__"} & set(methods):
                stubs.append(name)
    return stubs
