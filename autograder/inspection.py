"""A static reading of a submission's graded code cells for what an honest solution never needs: embedded data and
code built at run time.

Round 5 answered VOC's and CamVid's held-out copies by registration: the public masks sat in the model's cell as one
compressed base64 string, decoded at run time (45/45 for an untrained model, no suspicion), and a copier ran a
classmate's cells through ``exec(zlib.decompress(base64.b64decode(...)))``, which no code fingerprint reads. Both
need a cell to carry data or to build code while it runs; an honest cell does neither (``tests/test_inspection.py``
reads the reference, the release, every honest student of the test classes and of ``bench/honest_students.py``).

The cells are read as text (``tokenize`` and ``ast``) in the grader's process; nothing here runs them. What is found
becomes a suspicion (``Verdict.flags``) for the TA, never a change of points: a person judges it. Read:

(a) **embedded data**: one literal (a string, bytes, a number, or a comment, which the running code can read back
    from its own source) over ``MAX_LITERAL_CHARS``; a list, tuple, set or dict display holding more than
    ``MAX_DISPLAY_NUMBERS`` numbers; a cell whose literals and comments together exceed ``MAX_CELL_PAYLOAD_CHARS``
    (a blob split into many small pieces). Docstrings count: data fits in one as well as anywhere.
(b) **code built at run time**: ``exec``, ``eval``, ``compile``, ``__import__``, ``importlib``, ``builtins``,
    ``sys.modules``, the escape hatches of dunder attributes (``__builtins__``, ``__globals__``, ``__code__``,
    ``__subclasses__``, ``__self__``), ``types.CodeType`` and ``FunctionType``, and the decoders that turn a literal
    into code or data (``marshal``, ``pickle``, ``zlib``, ``lzma``, ``bz2``, ``gzip``, ``base64``, ``binascii``,
    ``codecs``; ``bytes.fromhex``), and the modules that run code given as a string (``timeit``, ``code``, ``runpy``,
    ``cProfile``, ...: ``RUNNERS``).
Sizes are UTF-8 bytes, and IPython's magic and shell lines (``%...``, ``!...``) count as literals: the sandbox drops
them before the code runs, yet the code can read its own source back (round 6 hid a classmate's cells there).

What this cannot see is in README's "Known limits" (data in identifiers or whitespace, in the checkpoint).
"""

from __future__ import annotations

import ast
import io
import threading
import tokenize
from dataclasses import dataclass

from autograder.sandbox_runner import is_magic, strip_magics

# The limits, each measured on honest code (``tests/test_inspection.py`` prints the honest maxima and keeps them
# below these): the reference, the release, the test classes' students and bench/honest_students.py.
MAX_LITERAL_CHARS = 4_000  # one literal or comment, UTF-8 bytes: the longest honest one is the model's docstring, 1,769
MAX_DISPLAY_NUMBERS = 128  # numbers in one list/tuple/set/dict display: honest cells hold 9 at most (a few sizes);
# a class palette as a student might type it (VOC: 21 x 3 = 63 numbers, round 6) is no suspicion
MAX_CELL_PAYLOAD_CHARS = 8_000  # a cell's literals and comments together: the richest honest cell holds 2,147
MAX_FINDINGS_SHOWN = 4  # findings quoted per cell in the suspicion (the rest are counted)

DYNAMIC_CODE = frozenset({"exec", "eval", "compile", "__import__"})  # builtins that run or load code named by a string
ESCAPES = frozenset({"builtins", "__builtins__", "importlib", "__globals__", "__code__", "__subclasses__", "__self__",
                     "CodeType", "FunctionType"})  # ways to reach those builtins, or to make a function from bytes
DECODERS = frozenset({"marshal", "pickle", "zlib", "lzma", "bz2", "gzip", "base64", "binascii", "codecs"})
RUNNERS = frozenset({"timeit", "code", "codeop", "cProfile", "profile", "runpy", "pdb", "bdb", "doctest",
                     "trace", "pydoc"})  # modules that run code given as a string (round 6: timeit.timeit(src))
COMMON_WORDS = frozenset({"eval", "compile"})  # a string that is only one of these is a mode or a torch name
# (``for mode in ("train", "eval")``, round 6), not a builtin looked up by name: not read as one


# CPython 3.11's AST constructor keeps its recursion depth in per-interpreter state, not per thread (see
# python/cpython#106905): two grading threads that parsed at once stopped one student's grading with "SystemError: AST
# constructor recursion depth mismatch" (a fresh-clone `make demo` under load: ada, the reference, crashed; a
# concepts student once in the suite). Every parse in the grader's threads takes this lock.
PARSING = threading.Lock()


def parse(code: str) -> ast.Module:
    """``ast.parse``, one thread at a time (``PARSING``)."""
    with PARSING:
        return ast.parse(code)


@dataclass(frozen=True)
class Finding:
    """One thing an honest cell never holds: ``what`` was found at ``line`` of the cell (1-based, as Jupyter numbers
    a cell's lines; None for the cell as a whole)."""

    line: int | None
    what: str

    def __str__(self) -> str:
        return f"{'the cell as a whole' if self.line is None else f'line {self.line}'}: {self.what}"


def inspect_cells(cells: dict[str, str]) -> list[str]:
    """The suspicions, one per graded cell that holds embedded data or builds code at run time (grade id → source,
    as the judge runs them). Each says what was found, in which cell and on which line, and that a person judges it.
    """
    suspicions = []
    for grade_id, source in cells.items():
        findings = inspect_cell(source)
        if findings:
            shown = "; ".join(str(f) for f in findings[:MAX_FINDINGS_SHOWN])
            more = f"; and {len(findings) - MAX_FINDINGS_SHOWN} more" if len(findings) > MAX_FINDINGS_SHOWN else ""
            suspicions.append(
                f"cell {grade_id} carries embedded data or builds code at run time ({shown}{more}): an honest "
                "solution needs neither; such a cell can hold remembered answers or a classmate's code that the "
                "similarity report does not read. Read from the source, not run, and no points were changed: for a "
                "person to judge")
    return suspicions


def inspect_cell(source: str) -> list[Finding]:
    """What one cell holds that an honest one never does, by line (empty for a cell that does not compile: the
    sandbox runs nothing of it)."""
    code = strip_magics(source)  # the cell as the sandbox runs it
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        return []
    except (RecursionError, MemoryError):
        return [Finding(None, "nested too deeply for the grader to read it")]
    magics = [(number, "magic or shell line", _size(line)) for number, line in enumerate(source.splitlines(), 1)
              if is_magic(line)]  # dropped before the code runs, yet it can read them back
    try:
        findings = _payload(code, tree, magics) + _displays(tree) + _dynamic_code(tree)
    except RecursionError:  # a chain of thousands of ``+``
        return [Finding(None, "nested too deeply for the grader to read it")]
    return sorted(findings, key=lambda f: f.line or 0)


# --- (a) embedded data ---------------------------------------------------------------------------------------------

def _literals(code: str, tree: ast.Module) -> list[tuple[int, str, int]]:
    """(line, kind, characters) of every literal and comment of ``code``, as written (an f-string whole)."""
    kinds = {tokenize.STRING: "string literal", tokenize.NUMBER: "number literal", tokenize.COMMENT: "comment"}
    try:
        return [(tok.start[0], kinds[tok.type], _size(tok.string))
                for tok in tokenize.generate_tokens(io.StringIO(code).readline) if tok.type in kinds]
    except (tokenize.TokenError, SyntaxError):  # parsed yet not tokenized: the literals as the parser sees them
        return [(node.lineno, "literal", _size(ast.get_source_segment(code, node) or ""))
                for node in ast.walk(tree) if isinstance(node, ast.Constant) and not isinstance(node.value, bool)]


def _size(text: str) -> int:
    """What ``text`` can carry: its UTF-8 bytes (round 6 packed 20 bits into each character of Unicode's upper planes;
    ASCII text, all an honest cell holds, counts as before)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _payload(code: str, tree: ast.Module, magics: list[tuple[int, str, int]] = ()) -> list[Finding]:
    literals = _literals(code, tree) + list(magics)
    found = [Finding(line, f"a {kind} of {size:,} bytes (over the {MAX_LITERAL_CHARS:,} one literal may hold)")
             for line, kind, size in literals if size > MAX_LITERAL_CHARS]
    total = sum(size for _, _, size in literals)
    if total > MAX_CELL_PAYLOAD_CHARS:
        found.append(Finding(None, f"{len(literals):,} literals and comments of {total:,} bytes in all (over the "
                                f"{MAX_CELL_PAYLOAD_CHARS:,} a cell may hold)"))
    return found


DISPLAYS = (ast.List, ast.Tuple, ast.Set, ast.Dict)


def _displays(tree: ast.Module) -> list[Finding]:
    """Displays (the outermost of nested ones) holding more than ``MAX_DISPLAY_NUMBERS`` numbers."""
    found, inner = [], set()
    for node in ast.walk(tree):  # breadth first: an outer display comes before the displays inside it
        if not isinstance(node, DISPLAYS) or id(node) in inner:
            continue
        inside = list(ast.walk(node))
        inner.update(id(n) for n in inside if isinstance(n, DISPLAYS))
        numbers = sum(isinstance(n, ast.Constant) and type(n.value) in (int, float, complex) for n in inside)
        if numbers > MAX_DISPLAY_NUMBERS:
            found.append(Finding(node.lineno, f"a {type(node).__name__.lower()} of {numbers:,} numbers (over the "
                                              f"{MAX_DISPLAY_NUMBERS} one display may hold)"))
    return found


# --- (b) code built at run time ------------------------------------------------------------------------------------

def _is_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _dynamic_code(tree: ast.Module) -> list[Finding]:
    found, called = [], set()
    modules = {alias.asname or alias.name: alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}  # ``import sys as _sys``: _sys → sys
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DYNAMIC_CODE:
            called.add(id(node.func))  # ``exec(...)`` is one finding, not a call and a name
            literal = bool(node.args) and _is_literal(node.args[0])
            what = "a string literal (code no fingerprint reads)" if literal else "a computed string"
            found.append(Finding(node.lineno, f"{node.func.id}() on {what}"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found += _imports(node)
        elif isinstance(node, ast.Name) and (node.id in ESCAPES or node.id in DYNAMIC_CODE) and id(node) not in called:
            found.append(Finding(node.lineno, f"uses {node.id}"))
        elif isinstance(node, ast.Attribute):
            base = modules.get(node.value.id, node.value.id) if isinstance(node.value, ast.Name) else ""
            if node.attr in ESCAPES or node.attr in DYNAMIC_CODE and base in ("builtins", "__builtins__"):
                found.append(Finding(node.lineno, f"uses .{node.attr}"))
            elif node.attr in DECODERS:  # another module's import of one: torch.serialization.pickle
                found.append(Finding(node.lineno, f"reaches .{node.attr} (a decoder of embedded data or code)"))
            elif base == "sys" and node.attr == "modules":
                found.append(Finding(node.lineno, "uses sys.modules (a module looked up by name)"))
            elif node.attr == "import_module":
                found.append(Finding(node.lineno, "uses import_module (a module loaded by name)"))
            elif node.attr == "fromhex":
                found.append(Finding(node.lineno, "decodes hexadecimal text (.fromhex)"))
        elif isinstance(node, (ast.Constant, ast.BinOp)) and _folded(node) in (ESCAPES | DYNAMIC_CODE | DECODERS
                                                                               | RUNNERS) - COMMON_WORDS:
            found.append(Finding(node.lineno, f"names {_folded(node)!r} in a string"))
    return found


def _folded(node: ast.AST) -> str | None:
    """The string a literal or a sum of literals spells (``'ex' + 'ec'``: ``'exec'``); None for anything else."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _folded(node.left), _folded(node.right)
        return left + right if left is not None and right is not None else None
    return None


def _imports(node: ast.Import | ast.ImportFrom) -> list[Finding]:
    """Imports of a decoder, of ``builtins`` or ``importlib``, and ``from types import CodeType`` (and the like)."""
    if isinstance(node, ast.ImportFrom):
        pairs = [(node.module or "", alias.name) for alias in node.names]
    else:
        pairs = [(alias.name, "") for alias in node.names]
    found = []
    for module, name in pairs:
        top = module.split(".")[0]
        shown = (module + (f".{name}" if name else ""))[:80]  # identifiers the student chose: quoted short
        if top in DECODERS:
            found.append(Finding(node.lineno, f"imports {shown} (a decoder of embedded data or code)"))
        elif top in RUNNERS:
            found.append(Finding(node.lineno, f"imports {shown} (it runs code given as a string)"))
        elif top in ESCAPES or name in ESCAPES or name in DYNAMIC_CODE or (top, name) == ("sys", "modules"):
            found.append(Finding(node.lineno, f"imports {shown} (code reached by name at run time)"))
    return found
