"""The sandbox's runner in the test's own process, for the tests of what the checks decide (planted bugs, results
tables): ``judge_submission(..., run=run_in_process)`` prepares the scratch folder and reads the observations back
exactly as for a student, but ``sandbox_runner.py`` runs here instead of in a limited, jailed child process, so a
test costs no interpreter start and no torch import. The sandbox itself is tested on its own (the adversarial suite,
the jail tests, the pipeline's runs)."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import traceback

import torch

from autograder.sandbox import RunResult


def run_in_process(args: list[str], cwd, limits=None, env=None, jail=None) -> RunResult:
    """``sandbox.run_limited``'s stand-in: runs the script ``args[-2]`` with its argument ``args[-1]`` in ``cwd``."""
    script, argument = args[-2], args[-1]
    loader = importlib.util.spec_from_file_location("sandbox_runner_in_process", script)
    runner = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(runner)
    threads, here, argv, start = torch.get_num_threads(), os.getcwd(), sys.argv, time.perf_counter()
    try:
        os.chdir(cwd)
        sys.argv = [script, argument]
        runner.main()
        returncode, tail = 0, ""
    except BaseException:  # as a dying runner would be reported
        returncode, tail = 1, traceback.format_exc()[-2000:]
    finally:
        os.chdir(here)
        sys.argv = argv
        torch.set_num_threads(threads)
    return RunResult(returncode, False, time.perf_counter() - start, tail)
