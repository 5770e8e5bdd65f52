"""`make demo` from a fresh clone, once on an idle machine and once with one core kept busy by another process.

What it shows: the demo's outcome does not depend on how busy the machine is. For each run it reports the exit
status, the reference's validation mIoU (from the results file the demo's training wrote), the wall time of
each step of the demo (its ``timings.json``) and the whole run. Both runs must exit 0 with the same mIoU.

The clones are of the committed HEAD (commit first), all made before the first run. Each clone's ``make demo``
creates its own ``.venv`` as on a new machine (pip's cache makes that a couple of minutes where the wheels were
downloaded before); ``install_s`` is that part, the other columns are the demo's own steps.

Usage: python bench/demo_under_load.py [--runs idle busy] [--rev HEAD] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT, print_table, write_json


def prepare_clone(workdir: Path, rev: str) -> Path:
    """A fresh clone at ``rev``; its ``make demo`` creates its own ``.venv`` as on a new machine."""
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", rev], cwd=clone, check=True)
    return clone


def run_demo(clone: Path, busy: bool) -> dict:
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    start = time.perf_counter()
    try:
        proc = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
    wall = time.perf_counter() - start
    (clone / "make_demo.log").write_text(proc.stdout + proc.stderr)
    results = clone / "demo_out" / "course" / "source" / "segmentation_hw" / "segmentation_hw_results.json"
    timings = clone / "demo_out" / "timings.json"
    metrics = json.loads(results.read_text())["metrics"] if results.is_file() else {}
    steps = json.loads(timings.read_text()) if timings.is_file() else {}
    return {"exit": proc.returncode, "wall_s": round(wall, 1), "reference_miou": metrics.get("miou"),
            "training_minutes": metrics.get("training_minutes"), "steps": steps,
            "log_tail": (proc.stdout + proc.stderr)[-1500:] if proc.returncode else ""}


def step_durations(steps: dict) -> dict:
    """The demo's timings.json holds the start of each step; the differences are the steps' durations."""
    names = list(steps)
    return {name: round(steps[nxt] - steps[name], 1) for name, nxt in zip(names, names[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["idle", "busy"], choices=["idle", "busy"])
    parser.add_argument("--rev", default="HEAD", help="the commit to clone (default: HEAD)")
    parser.add_argument("--keep", action="store_true", help="keep the clones (their make_demo.log, demo_out/)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    previous = RESULTS / "demo_under_load_cpu.json"  # runs of the same commit measured earlier are kept
    earlier = json.loads(previous.read_text()) if previous.is_file() else {}
    runs = {k: v for k, v in earlier.get("runs", {}).items() if earlier.get("commit") == commit and k not in args.runs}
    clones = {}
    for name in args.runs:  # every clone first: all runs test the same commit, whatever is committed meanwhile
        workdir = Path(tempfile.mkdtemp(prefix=f"demo-{name}-"))
        workdir.chmod(0o755)  # like a checkout others may enter: the grading jail's uid must reach the clone's .venv
        clones[name] = (workdir, prepare_clone(workdir, commit))
    for name in args.runs:
        workdir, clone = clones[name]
        print(f"{name}: make demo in {clone} (commit {commit}){' with one core kept busy' if name == 'busy' else ''}",
              flush=True)
        runs[name] = run_demo(clone, busy=name == "busy")
        print(f"{name}: exit {runs[name]['exit']}, reference mIoU {runs[name]['reference_miou']}, "
              f"{runs[name]['wall_s']} s", flush=True)
        if runs[name]["log_tail"]:
            print(runs[name]["log_tail"])
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = [{"run": name, "exit": r["exit"], "reference_miou": r["reference_miou"], "wall_s": r["wall_s"],
             "install_s": round(r["wall_s"] - sum(step_durations(r["steps"]).values()), 1),
             **step_durations(r["steps"])} for name, r in runs.items()]
    print_table(f"make demo from a fresh clone of {commit}: idle vs one core kept busy", rows)
    same = len({r["reference_miou"] for r in runs.values()}) == 1
    print(f"all exit 0: {all(r['exit'] == 0 for r in runs.values())}; same mIoU in every run: {same}")
    write_json("demo_under_load", {"commit": commit, "runs": runs, "same_miou": same})


if __name__ == "__main__":
    main()
