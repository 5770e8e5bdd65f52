"""The sandbox's runner in the test's own process, for the tests of what the checks decide (planted bugs, results
tables): ``judge_submission(..., run=run_in_process)`` hands over the same files and reads the observations back
exactly as for a student, but ``sandbox_runner.py`` runs here instead of in bubblewrap, so a test costs no
interpreter start and no torch import. The sandbox itself is tested on its own (the adversarial suite, the jail
tests, the pipeline's runs); what it alone decides (modules absent from it, say) is not seen here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from autograder.sandbox import RunResult


def run_in_process(script: str, files: dict[str, bytes], limits=None, isolation=None, env=None) -> RunResult:
    """``sandbox.run_sandboxed``'s stand-in: the files in a temporary folder, the output pipe a temporary file.

    The result says ``isolated=True``, as the sandbox's would, so that verdicts are those a sandboxed run gives."""
    threads, argv, start = torch.get_num_threads(), sys.argv, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="inprocess-") as folder:
        paths = {}
        for name, data in files.items():
            paths[name] = str(Path(folder) / name)
            Path(paths[name]).write_bytes(data)
        loader = importlib.util.spec_from_file_location("sandbox_runner_in_process", paths[script])
        runner = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(runner)
        out_path = Path(folder) / "output"
        out = os.open(out_path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            sys.argv = [paths[script], json.dumps({"files": paths, "out": out})]
            runner.main()  # closes ``out`` when it has sent everything
            returncode, tail = 0, ""
        except BaseException:  # as a dying runner would be reported
            returncode, tail = 1, traceback.format_exc()[-2000:]
            try:
                os.close(out)
            except OSError:
                pass
        finally:
            sys.argv = argv
            torch.set_num_threads(threads)
        output = out_path.read_bytes()
    return RunResult(returncode, False, time.perf_counter() - start, tail, output, False, True)
