"""Runs inside the sandbox: executes the student's class cells, then the assignment's probes, and saves what
they observed. Standalone on purpose (started with ``python -I``; it imports nothing from ``autograder``).

Usage: python -I sandbox_runner.py spec.json
"""

import importlib.util
import json
import sys

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
    for grade_id, code in spec["cells"].items():
        try:
            exec(compile(strip_magics(code), f"<cell {grade_id}>", "exec"), namespace)
        except BaseException as err:  # SystemExit and KeyboardInterrupt included
            cell_errors[grade_id] = f"{type(err).__name__}: {str(err)[:300]}"
    results = probes.run(namespace, spec)
    results["cell_errors"] = cell_errors
    torch.save(results, spec["out"])


if __name__ == "__main__":
    main()
