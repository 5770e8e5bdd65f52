"""What the sandbox costs per student: the start-up of a sandboxed Python against a bare one, with and without
importing torch (what every judge run does first), median of ``--repeat`` runs.

``--checkout DIR`` measures another checkout's sandbox with this same script (run it with that checkout's Python:
``DIR/.venv/bin/python bench/sandbox_overhead.py --checkout DIR``): round 2's ``unshare`` jail
(``run_limited``/``jail_command``) or this round's bubblewrap (``run_sandboxed``).

``--judge FOLDER`` also times the whole judge of one homework submission (e.g. the trained reference's folder: its
notebook, checkpoint and results file) on the synthetic default, the grading data made once beforehand.

Usage: python bench/sandbox_overhead.py [--repeat 7] [--checkout DIR] [--judge FOLDER]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, print_table, write_json

SCRIPTS = {"empty script": "pass", "import torch": "import torch"}


def bare(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-I", "-c", code], check=True)
    return time.perf_counter() - start


def sandboxed(code: str) -> float:
    """One run in this checkout's sandbox, whichever API it has."""
    import autograder.sandbox as sandbox

    if hasattr(sandbox, "run_sandboxed"):  # bubblewrap (this round)
        run = sandbox.run_sandboxed("s.py", {"s.py": code.encode()}, sandbox.Limits(), sandbox.Isolation(),
                                    sandbox.minimal_env())
        assert run.returncode == 0, run.stderr_tail
        return run.seconds
    with tempfile.TemporaryDirectory() as folder:  # round 2's unshare jail
        script = Path(folder) / "s.py"
        script.write_text(code)
        run = sandbox.run_limited(sandbox.python_command(script), Path(folder), sandbox.Limits(), sandbox.minimal_env(),
                                  sandbox.Jail(uid=sandbox.JAIL_UID_BASE))
        assert run.returncode == 0, run.stderr_tail
        return run.seconds


def judge_seconds(folder: Path, repeat: int) -> list[float]:
    import os

    from autograder.heldout import grading_data
    from autograder.judge import judge_submission
    from autograder.term import GradedSetting

    os.environ.setdefault("SEGMENTATION_TERM_SECRET", "sandbox-overhead-bench-secret")
    data = grading_data(folder, GradedSetting())
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        verdict = judge_submission(folder, "segmentation_hw", data)
        times.append(time.perf_counter() - start)
        assert verdict.status == "graded", verdict.problems
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--judge", type=Path, default=None, help="a homework submission folder to judge")
    args = parser.parse_args()
    sys.path.insert(0, str(args.checkout))
    import autograder.sandbox as sandbox

    label = "bubblewrap" if hasattr(sandbox, "run_sandboxed") else "unshare jail (round 2)"
    rows = []
    for name, code in SCRIPTS.items():
        plain = statistics.median(bare(code) for _ in range(args.repeat))
        inside = statistics.median(sandboxed(code) for _ in range(args.repeat))
        rows.append({"sandbox": label, "what": name, "bare_s": round(plain, 3), "sandboxed_s": round(inside, 3),
                     "overhead_s": round(inside - plain, 3)})
    if args.judge is not None:
        times = judge_seconds(args.judge, args.repeat)
        rows.append({"sandbox": label, "what": "judge one homework submission", "bare_s": None,
                     "sandboxed_s": round(statistics.median(times), 3), "overhead_s": None})
    print_table(f"sandbox start-up, median of {args.repeat} ({args.checkout})", rows)
    if args.checkout.resolve() == ROOT:
        write_json("sandbox_overhead", {"rows": rows})


if __name__ == "__main__":
    main()
