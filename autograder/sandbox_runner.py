"""Runs inside the sandbox: executes the student's class cells, then the assignment's probes, and sends what they
observed to the grader. Standalone on purpose (started with ``python -I``; it imports nothing from ``autograder``).

Usage (by ``autograder.sandbox.run_sandboxed``): python -I <this file> '<manifest JSON>'. The manifest names the
sealed in-memory files the grader wrote (``spec.json``, ``probes.py`` and the probes' inputs) and ``out``, the
descriptor of the grader's pipe. The runner writes ``STARTED`` there before any student code runs (so the grader
tells a sandbox that never started from code that ended it), then the observations (``torch.save`` bytes).
Everything it sends is a claim: the grader checks it against what it computes itself.
"""

import contextlib
import io
import json
import os
import sys
import types

STARTED = b"SANDBOX-RUNNER-STARTED\n"
INPUT_KEYS = ("images", "inputs", "checkpoint", "random_weights")  # spec entries that name one of the grader's files


class CappedWriter(io.TextIOBase):
    """Keeps the first few kilobytes of what student code prints and drops the rest (gigantic outputs)."""

    def __init__(self, limit=16384):
        self.parts, self.size, self.limit = [], 0, limit

    def write(self, text):
        if self.size < self.limit:
            self.parts.append(text[: self.limit - self.size])
            self.size += len(self.parts[-1])
        return len(text)


PREAMBLE = "import math\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"


def is_magic(line):
    """An IPython magic or shell line (``%...``, ``!...``): not Python, dropped before a cell runs."""
    return line.lstrip().startswith(("%", "!"))


def strip_magics(code):
    return "\n".join("" if is_magic(line) else line for line in code.splitlines())


def run_cells(cells, cell_errors):
    """Executes the graded cells (grade id -> source, in the notebook's order), each in a namespace of its own that
    starts as a copy of the names bound so far (the preamble's and the cells' above it): a cell's functions keep
    calling its own helpers whatever a later cell binds under the same name, as the check under each cell sees them
    in the notebook. Returns every name bound (later cells win) and each cell's namespace, by grade id; a cell that
    raises keeps what it bound before the error, and the error goes into ``cell_errors``."""
    bound = {"__name__": "__student__"}
    exec(PREAMBLE, bound)
    spaces = {}
    for grade_id, code in cells.items():
        own = dict(bound)
        try:
            exec(compile(strip_magics(code), f"<cell {grade_id}>", "exec"), own)
        except BaseException as err:  # SystemExit and KeyboardInterrupt included
            cell_errors[grade_id] = f"{type(err).__name__}: {str(err)[:300]}"
        bound.update(own)
        spaces[grade_id] = own
    return bound, spaces


def send(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main():
    manifest = json.loads(sys.argv[1])
    files, out = manifest["files"], manifest["out"]
    send(out, STARTED)
    with open(files["spec.json"]) as f:
        spec = json.load(f)
    for key in INPUT_KEYS:  # names of the grader's files → their paths here
        if spec.get(key):
            spec[key] = files[spec[key]]
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    probes = types.ModuleType("probes")
    with open(files["probes.py"]) as f:
        exec(compile(f.read(), "probes.py", "exec"), probes.__dict__)
    cell_errors = {}
    printed = CappedWriter()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        namespace, spec["cell_namespaces"] = run_cells(spec["cells"], cell_errors)
        results = probes.run(namespace, spec)
    cleaned = {}
    for name, value in results.items():
        try:
            cleaned[name] = plain(value)
        except TypeError as err:
            cleaned[name] = {"error": f"returned something that is not a tensor or number ({err})"}
    results = cleaned
    results["cell_errors"] = cell_errors
    results["nonce"] = spec.get("nonce")
    buffer = io.BytesIO()
    torch.save(results, buffer)
    send(out, buffer.getvalue())
    os.close(out)


def plain(value, depth=0):
    """Only plain data leaves the sandbox: tensors (as base tensors), numbers, strings, lists, tuples, dicts.
    Anything else (an object whose __eq__ always answers True, say) turns that probe into an error."""
    import torch

    if depth > 6:
        raise TypeError("nested too deeply")
    if type(value) in (bool, int, float, str, type(None)):
        return value
    if isinstance(value, torch.Tensor):
        return torch.Tensor.as_subclass(value, torch.Tensor).detach().clone()
    if type(value) in (list, tuple):
        return [plain(v, depth + 1) for v in value]
    if type(value) is dict:
        try:
            return {str(k): plain(v, depth + 1) for k, v in value.items()}
        except TypeError as err:
            if depth == 0 and "error" not in value:
                return {"error": f"returned something that is not a tensor or number ({err})"}
            raise
    raise TypeError(f"{type(value).__name__} is not a tensor or number")


if __name__ == "__main__":
    main()
