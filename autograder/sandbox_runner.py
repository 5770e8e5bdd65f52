"""Runs inside the sandbox: executes the student's class cells, then the assignment's probes, and saves what
they observed. Standalone on purpose (started with ``python -I``; it imports nothing from ``autograder``).

Usage: python -I sandbox_runner.py spec.json
"""

import contextlib
import importlib.util
import io
import json
import sys


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


def strip_magics(code):
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    import torch

    torch.set_num_threads(int(spec.get("threads", 1)))
    loader = importlib.util.spec_from_file_location("probes", spec["probes_file"])
    probes = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(probes)
    namespace = {"__name__": "__student__"}
    exec(PREAMBLE, namespace)
    cell_errors = {}
    printed = CappedWriter()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        for grade_id, code in spec["cells"].items():
            try:
                exec(compile(strip_magics(code), f"<cell {grade_id}>", "exec"), namespace)
            except BaseException as err:  # SystemExit and KeyboardInterrupt included
                cell_errors[grade_id] = f"{type(err).__name__}: {str(err)[:300]}"
        results = probes.run(namespace, spec)
    cleaned = {}
    for name, value in results.items():
        try:
            cleaned[name] = plain(value)
        except TypeError as err:
            cleaned[name] = {"error": f"returned something that is not a tensor or number ({err})"}
    results = cleaned
    results["cell_errors"] = cell_errors
    torch.save(results, spec["out"])


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
