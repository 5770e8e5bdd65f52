"""Grading on a Dask local cluster with 1 and 2 workers: throughput, the engine's overhead, memory per worker.

Two parts, both on the homework's simulated class (``grading_at_scale.scaled_class``: the demo's six kinds of
submission round-robin, each a real notebook, results file and checkpoint):

1. **Engine** (default 1,000 submissions): every submission's files travel to a worker as bytes, as in a real run,
   and are unpacked in a scratch folder with the checkpoint read by ``torch.load(weights_only=True)``; the judge is
   replaced by a fixed ``--judge-ms`` sleep (the real judge spends its time in its sandbox's subprocess, not in the
   worker). The same stand-in also runs in the local pool's threads, so the difference per student is what the
   engine adds: moving the bytes, scheduling, returning the result. Nothing is written to the gradebook.
2. **Real** (default 24 submissions): ``grade`` end to end (judge in the sandbox, nbgrader's rendering and the
   gradebook, done by the coordinator) with the local pool and a local cluster of 1 and 2 workers.

Then an extrapolation to a 16-worker cluster from the measured per-student judge time and the coordinator's
per-student recording time (which does not parallelise: only the coordinator writes the gradebook).

Usage: python bench/dask_grading.py [--students 1000] [--real 24] [--judge-ms 100] [--parts engine,real]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ROOT, print_table, write_json
from grading_at_scale import ASSIGNMENT, scaled_class

from autograder.checks import get_assignment
from autograder.cluster import DaskGrading, Submission, grade_on_worker
from autograder.judge import MAX_CHECKPOINT_BYTES, judged_files
from autograder.pipeline import GradeOptions, grade


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def stand_in_judge(assignment: str, submission: Submission, data, limits, course_root: str,
                   judge_seconds: float = 0.1) -> dict:
    """What a worker does with a submission, with the judge's own time replaced by a sleep."""
    import torch

    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        submission.write(folder)
        checkpoint = folder / f"{assignment}_checkpoint.pt"
        if checkpoint.is_file():
            torch.load(checkpoint, map_location="cpu", weights_only=True)
        time.sleep(judge_seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"pid": os.getpid(), "peak_rss_mb": _peak_rss_mb()}


def measured_judge(assignment: str, submission: Submission, *args) -> dict:
    """The real task, with the worker's peak memory added."""
    answer = grade_on_worker(assignment, submission, *args)
    answer["verdict"]["sandbox"]["peak_rss_mb"] = _peak_rss_mb()
    return answer


def engine_part(course, students: list[str], judge_ms: int) -> list[dict]:
    spec = get_assignment(ASSIGNMENT)
    names = judged_files(spec)
    folder = lambda s: course.root / "submitted" / s / ASSIGNMENT
    seconds = judge_ms / 1000
    rows = []
    for workers in (1, 2):
        def one(student: str) -> dict:
            return stand_in_judge(ASSIGNMENT, Submission.read(folder(student), student, names, MAX_CHECKPOINT_BYTES),
                                  None, None, str(course.root), seconds)

        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, students))
        pool_wall = time.perf_counter() - start
        rows.append(_engine_row("local pool (threads)", workers, len(students), pool_wall, judge_ms, None, None))

        task = lambda a, sub, d, lim, root: stand_in_judge(a, sub, d, lim, root, seconds)
        start = time.perf_counter()
        answers = [a for _, a in DaskGrading(local_workers=workers, task=task).outcomes(
            course.root, spec, students, None, None)]
        wall = time.perf_counter() - start
        errors = [a for a in answers if isinstance(a, Exception)]
        assert not errors and len(answers) == len(students), errors[:3]
        peaks: dict[int, float] = {}
        for a in answers:
            peaks[a["pid"]] = max(peaks.get(a["pid"], 0.0), a["peak_rss_mb"])
        rows.append(_engine_row("Dask local cluster", workers, len(students), wall, judge_ms, pool_wall,
                                max(peaks.values())))
        print_table("engine (so far)", rows)
    return rows


def _engine_row(engine, workers, n, wall, judge_ms, pool_wall, peak) -> dict:
    ideal = n * judge_ms / 1000 / workers
    return {"engine": engine, "workers": workers, "submissions": n, "wall_s": round(wall, 1),
            "ms_per_student": round(1000 * wall / n, 1),
            "overhead_ms_per_student_vs_ideal": round(1000 * (wall - ideal) * workers / n, 1),
            "extra_ms_per_student_vs_pool": None if pool_wall is None else round(1000 * (wall - pool_wall) / n, 1),
            "peak_worker_rss_mb": None if peak is None else round(peak)}


def real_part(course, students: list[str]) -> tuple[list[dict], dict]:
    rows, judge_one_worker, render = [], None, []
    for label, opts in (("local pool (threads)", GradeOptions(workers=2, force=True)),
                        ("Dask local cluster", GradeOptions(force=True, cluster=DaskGrading(local_workers=1,
                                                                                             task=measured_judge))),
                        ("Dask local cluster", GradeOptions(force=True, cluster=DaskGrading(local_workers=2,
                                                                                             task=measured_judge)))):
        start = time.perf_counter()
        results = grade(course, ASSIGNMENT, students, opts, log=lambda *_: None)
        wall = time.perf_counter() - start
        workers = opts.cluster.local_workers if opts.cluster else opts.workers
        judge = [r.timings.judge for r in results]
        render += [r.timings.render for r in results]
        peaks = [r.sandbox.get("peak_rss_mb") for r in results if r.sandbox.get("peak_rss_mb")]
        if opts.cluster and workers == 1:
            judge_one_worker = statistics.median(judge)
        rows.append({"engine": label, "workers": workers, "submissions": len(students), "wall_s": round(wall, 1),
                     "s_per_student": round(wall / len(students), 2),
                     "median_judge_s": round(statistics.median(judge), 2),
                     "median_record_s": round(statistics.median(r.timings.render for r in results), 2),
                     "peak_worker_rss_mb": round(max(peaks)) if peaks else None,
                     "statuses": sorted({r.status for r in results})})
        print_table("real grading (so far)", rows)
    return rows, {"judge_s_one_worker": judge_one_worker, "record_s": statistics.median(render)}


def extrapolate(measured: dict, workers: int = 16, students: int = 5000) -> dict:
    judge, record = measured["judge_s_one_worker"], measured["record_s"]
    workers_rate = workers / judge  # students per second the workers can judge
    coordinator_rate = 1 / record  # students per second the coordinator can record
    rate = min(workers_rate, coordinator_rate)
    return {"workers": workers, "students": students, "judge_s_per_student": round(judge, 2),
            "record_s_per_student": round(record, 2), "workers_students_per_s": round(workers_rate, 2),
            "coordinator_students_per_s": round(coordinator_rate, 2),
            "bottleneck": "coordinator" if coordinator_rate < workers_rate else "workers",
            "hours": round(students / rate / 3600, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--real", type=int, default=24)
    parser.add_argument("--judge-ms", type=int, default=100)
    parser.add_argument("--parts", default="engine,real", help="which parts: engine, real or both")
    parser.add_argument("--out", type=Path, default=ROOT / "demo_out" / "dask_bench")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    course = scaled_class(args.out, max(args.students if "engine" in parts else 0, args.real))
    everyone = course.submitted(ASSIGNMENT)
    load = os.getloadavg()[0]
    if "engine" in parts:
        engine = engine_part(course, everyone[:args.students], args.judge_ms)
        print_table(f"engine: {args.students} simulated submissions, judge replaced by a {args.judge_ms} ms sleep",
                    engine)
        write_json("dask_grading_engine", {"load_average_at_start": load, "judge_ms": args.judge_ms, "rows": engine})
    if "real" in parts:
        real, measured = real_part(course, everyone[:args.real])
        guess = extrapolate(measured)
        print_table(f"real grading: {args.real} submissions of the homework", real)
        print_table("extrapolated to 16 workers (assumes the same judge time per worker, one coordinator)", [guess])
        write_json("dask_grading_real", {"load_average_at_start": os.getloadavg()[0], "rows": real,
                                         "extrapolation": guess})

if __name__ == "__main__":
    main()
