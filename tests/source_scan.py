"""Finding a function's code inside other code: the test that no concepts oracle ships to students.

Each function body (docstring left out) becomes a list of tokens with every identifier replaced by ``V`` and every
string by ``S`` (renaming variables changes nothing), and its runs of ``K`` tokens are compared. A function of the
grader "is in" a package when one function there holds at least ``SHARE`` of its runs. Calibrated on this
repository: the oracles moved out of course_lib matched their old copies at 1.0; what course_lib keeps (the
confusion-matrix IoU the homework needs, the training losses) reaches at most about 0.26 against any oracle or
reference function.
"""

from __future__ import annotations

import ast
import io
import keyword
import textwrap
import tokenize

K = 12  # tokens per run
SHARE = 0.5  # a function counts as present above this share of its runs
MIN_RUNS = 20  # shorter functions (one-liners) are judged by name only


def functions(source: str) -> dict[str, str]:
    """Name → body source (docstring excluded) of every function and method in ``source``."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            if body:
                found[node.name] = "\n".join(lines[body[0].lineno - 1:node.end_lineno])
    return found


def runs(code: str) -> set[tuple[str, ...]]:
    tokens = []
    for token in tokenize.generate_tokens(io.StringIO(textwrap.dedent(code)).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                          tokenize.ENDMARKER):
            continue
        if token.type == tokenize.STRING:
            tokens.append("S")
        elif token.type == tokenize.NAME and not keyword.iskeyword(token.string):
            tokens.append("V")
        else:
            tokens.append(token.string)
    return {tuple(tokens[i:i + K]) for i in range(len(tokens) - K + 1)}


def present(graded: dict[str, str], package: dict[str, str]) -> list[tuple[str, str, float]]:
    """``(graded function, package function, share)`` for every graded function found in the package's code.

    Args:
        graded: label → source of the grader's modules (reference solutions, oracles).
        package: label → source of the package's modules.
    """
    shipped = {f"{label}:{name}": runs(body) for label, source in package.items()
               for name, body in functions(source).items()}
    found = []
    for label, source in graded.items():
        for name, body in functions(source).items():
            mine = runs(body)
            if len(mine) < MIN_RUNS:
                continue
            share, where = max(((len(mine & theirs) / len(mine), place) for place, theirs in shipped.items()),
                               default=(0.0, ""))
            if share >= SHARE:
                found.append((f"{label}:{name}", where, round(share, 2)))
    return found
