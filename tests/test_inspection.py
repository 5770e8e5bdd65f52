"""The static inspection of graded code cells (``autograder.inspection``) in both directions: every form of embedded
data and of code built at run time that round 5 used, and the evasions next to them, is flagged with its cell and
line; the reference, the release and every honest student the suite and the benchmarks know are not, with room to
spare under each limit (the honest maxima are printed: ``pytest -s``).

Read as text only: no cell runs here.
"""

import ast
import base64
import random
import re
import sys
import textwrap
import zlib

import nbformat
import pytest

from autograder import inspection
from autograder.checks import ASSIGNMENTS
from autograder.inspection import inspect_cell, inspect_cells
from notebooks import REPO

SOLUTION_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)


def _code_cells(folder: str, assignment: str) -> dict[str, str]:
    nb = nbformat.read(REPO / folder / assignment / f"{assignment}.ipynb", as_version=4)
    graded = set(ASSIGNMENTS[assignment].code_cells)
    return {c.metadata["nbgrader"]["grade_id"]: SOLUTION_LINE.sub("", c.source) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id") in graded}


def honest_cells() -> list[tuple[str, str, str]]:
    """(whose, grade id, source) of every honest graded cell known: the source notebooks' solutions as students of
    ``tests/classes.py`` hand them in (the delimiters gone), the release's stubs, the homework's students of
    ``bench/honest_students.py`` (the hand-written alternatives and 40 drawn ones, the release's docstrings kept) and
    the concepts assignment's alternatives written under the release's stub (its docstring kept)."""
    sys.path.insert(0, str(REPO / "bench"))
    import test_concepts_alternatives as concepts
    from honest_students import _keep_docstring, honest_class

    found = []
    for assignment in ASSIGNMENTS:
        found += [(f"source {assignment}", gid, code) for gid, code in _code_cells("source", assignment).items()]
        found += [(f"release {assignment}", gid, code) for gid, code in _code_cells("release", assignment).items()]
    release = _code_cells("release", "segmentation_hw")
    for student in honest_class(43):
        found += [(f"honest student {student.name}", gid, _keep_docstring(release[gid], code))
                  for gid, code in student.cells.items()]
    stubs = _code_cells("release", "segmentation_concepts")
    for cell, alternatives in concepts.ALTERNATIVES.items():
        found += [(f"concepts alternative {i}", cell, stubs[cell] + "\n\n" + textwrap.dedent(code))
                  for i, code in enumerate(alternatives)]
    return found


def test_no_honest_cell_is_flagged_and_each_limit_leaves_room():
    cells = honest_cells()
    assert len(cells) > 100
    flagged = {f"{whose}: {gid}": inspect_cell(code) for whose, gid, code in cells if inspect_cell(code)}
    assert flagged == {}
    sizes = {(whose, gid): [size for _, _, size in inspection._literals(inspection.strip_magics(code), None)]
             for whose, gid, code in cells}
    literal = max((max(found, default=0), *key) for key, found in sizes.items())
    payload = max((sum(found), *key) for key, found in sizes.items())
    numbers = max((_most_numbers(code), whose, gid) for whose, gid, code in cells)
    print(f"\nhonest maxima over {len(cells)} cells: one literal {literal}, one cell's literals {payload}, "
          f"one display's numbers {numbers}")
    assert literal[0] * 2 < inspection.MAX_LITERAL_CHARS
    assert payload[0] * 2 < inspection.MAX_CELL_PAYLOAD_CHARS
    assert numbers[0] * 2 < inspection.MAX_DISPLAY_NUMBERS


def _most_numbers(code: str) -> int:
    tree = ast.parse(inspection.strip_magics(code))
    return max((sum(isinstance(n, ast.Constant) and type(n.value) in (int, float) for n in ast.walk(display))
                for display in ast.walk(tree) if isinstance(display, inspection.DISPLAYS)), default=0)


MASKS = random.Random(0).randbytes(10_000)  # stands for remembered masks, as incompressible as compressed ones
BLOB = base64.b64encode(zlib.compress(MASKS)).decode()

ATTACK_FORMS = {  # form: (cell source, a fragment of what the suspicion must say)
    "a compressed blob decoded at run time (round 5's registration)": (
        f"import zlib as _z, base64 as _b\n_MASKS = _z.decompress(_b.b64decode({BLOB!r}))\n",
        "string literal of"),
    "a classmate's code run from a compressed string (round 5's copier)": (
        f"import zlib, base64\nexec(zlib.decompress(base64.b64decode({BLOB[:200]!r})).decode())\n",
        "exec() on a computed string"),
    "the blob split into many small literals": (
        "_PARTS = []\n" + "".join(f"_PARTS.append({BLOB[i:i + 60]!r})\n" for i in range(0, len(BLOB), 60)),
        "literals and comments of"),
    "numbers in a list": ("_TABLE = [" + ", ".join(str(b) for b in MASKS[:500]) + "]\n", "a list of 500 numbers"),
    "data in a docstring": (f'class SegmentationModel:\n    """{BLOB}"""\n', "string literal of"),
    "data in comments, read back from the cell's own source": (
        "".join(f"# {BLOB[i:i + 70]}\n" for i in range(0, len(BLOB), 70)), "literals and comments of"),
    "one huge integer": (f"_N = {int.from_bytes(MASKS[:3000], 'big'):#x}\n", "number literal of"),
    "getattr(builtins, 'ex' + 'ec')": ("import builtins\ngetattr(builtins, 'ex' + 'ec')('x = 1')\n", "builtins"),
    "a name of builtins spelled in pieces": ("f = vars(torch)['__buil' + 'tins__']\n", "names '__builtins__'"),
    "__builtins__ looked up by a string": ("__builtins__['exec']('x = 1')\n", "__builtins__"),
    "a builtin reached through a function's __self__": ("print.__self__.exec('x = 1')\n", "__self__"),
    "exec bound to another name": ("run = exec\nrun(open('f').read())\n", "uses exec"),
    "eval of a literal": ("eval('1 + 1')\n", "eval() on a string literal"),
    "compile and FunctionType": ("import types\nf = types.FunctionType(compile(src, 'x', 'exec'), {})\n",
                                 "FunctionType"),
    "a code object from marshal": ("from marshal import loads\ncode = loads(data)\n", "imports marshal"),
    "pickle": ("import pickle\nobj = pickle.loads(data)\n", "imports pickle"),
    "pickle reached through torch": ("obj = torch.serialization.pickle.loads(data)\n", "reaches .pickle"),
    "importlib on a computed name": ("import importlib\nm = importlib.import_module('zl' + 'ib')\n",
                                     "import_module"),
    "__import__ on a computed name": ("m = __import__('zl' + 'ib')\n", "__import__() on a computed string"),
    "sys.modules": ("import sys\nz = sys.modules['zlib']\n", "sys.modules"),
    "sys.modules under another name": ("import sys as _s\nrunner = _s.modules['__main__']\n", "sys.modules"),
    "codecs": ("import codecs\nz = codecs.decode(b'x', 'zlib')\n", "imports codecs"),
    "hexadecimal text": ("data = bytes.fromhex('00ff')\n", ".fromhex"),
    "a dunder walk to every class": ("k = ().__class__.__base__.__subclasses__()\n", "__subclasses__"),
    # round 6: a classmate's cells in shell lines the sandbox drops, read back and run by timeit
    "code hidden in shell lines": ("".join(f"!true {BLOB[i:i + 70]}\n" for i in range(0, len(BLOB), 70)),
                                   "literals and comments of"),
    "timeit running a string": ("import timeit\ntimeit.timeit(src, number=1, globals=globals())\n",
                                "imports timeit"),
    "runpy": ("import runpy\nrunpy.run_path('/tmp/x.py')\n", "imports runpy"),
    "20 bits in each character of Unicode's upper planes": (
        "_D = " + repr("".join(chr(0x10000 + b * 256 + b) for b in MASKS[:1_200])) + "\n", "string literal of"),
    "a decoder named by a string": ("p = getattr(torch.serialization, 'pickle')\n", "names 'pickle'"),
}

HONEST_NOT_FLAGGED = {  # round 6's false suspicions: what honest notebooks write
    "a mode string": "for mode in ('train', 'eval'):\n    getattr(model, mode)()\n",
    "a class palette typed out": "PALETTE = [" + ", ".join(str(v % 256) for v in range(63)) + "]\n",
    "torch.compile named": "fast = torch.compile\n",
}


@pytest.mark.parametrize("form", sorted(HONEST_NOT_FLAGGED))
def test_what_honest_notebooks_write_is_not_flagged(form):
    assert inspect_cell(HONEST_NOT_FLAGGED[form]) == []


@pytest.mark.parametrize("form", sorted(ATTACK_FORMS))
def test_each_attack_form_is_flagged_with_its_cell_and_line(form):
    source, fragment = ATTACK_FORMS[form]
    source = "import torch\n\n" + source  # the finding's line counts from the cell's first line
    [suspicion] = inspect_cells({"residual_block": "x = 1\n", "segmentation_model": source})
    assert suspicion.startswith("cell segmentation_model ")
    if fragment == "literals and comments of":  # a blob in many pieces: the cell as a whole holds too much
        assert "the cell as a whole: " in suspicion and fragment in suspicion, suspicion
    else:
        finding = re.search(rf"line (\d+): [^;]*{re.escape(fragment)}", suspicion)
        assert finding and int(finding.group(1)) >= 3, suspicion  # below the two lines put first
    assert "for a person to judge" in suspicion and "no points were changed" in suspicion


def test_a_cell_that_does_not_compile_is_not_read_and_magics_are_stripped():
    """The sandbox runs neither: a cell with a syntax error defines nothing, a magic line is blanked first."""
    assert inspect_cell(f"def broken(:\n    x = {BLOB!r}\n") == []
    assert inspect_cell("%matplotlib inline\n!pip install zlib\nx = 1\n") == []


def test_many_findings_in_one_cell_make_one_suspicion_that_counts_the_rest():
    source = "".join(f"exec(code{i})\n" for i in range(10))
    [suspicion] = inspect_cells({"segmentation_model": source})
    assert suspicion.count("exec()") == inspection.MAX_FINDINGS_SHOWN and "and 6 more" in suspicion


def test_the_judge_raises_the_suspicion_and_changes_no_points(tmp_path):
    """The concepts notebook's reference with a copied cell run through ``exec``: the verdict carries the suspicion,
    and the checks score what the code does (the grader's runner in this process: ``tests/inprocess.py``)."""
    from autograder.judge import judge_submission
    from inprocess import run_in_process

    assignment = "segmentation_concepts"
    nb = nbformat.read(REPO / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "t4_losses")
    blob = base64.b64encode(zlib.compress(SOLUTION_LINE.sub("", cell.source).encode())).decode()
    cell.source = f"import zlib, base64\nexec(zlib.decompress(base64.b64decode({blob!r})).decode())\n"
    folder = tmp_path / assignment
    folder.mkdir()
    nbformat.write(nb, folder / f"{assignment}.ipynb")
    verdict = judge_submission(folder, assignment, run=run_in_process)
    assert [f for f in verdict.flags if f.startswith("cell t4_losses ") and "line 2: exec() on a computed string" in f]
    assert verdict.checks["test_t4_losses"].passed


def test_a_cell_too_deeply_nested_to_read_is_flagged_not_skipped():
    [finding] = inspect_cell("x = " + " + ".join(["'ex'"] * 3000) + "\n")
    assert "nested too deeply" in finding.what and finding.line is None

