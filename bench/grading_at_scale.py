"""Grading at scale: N simulated students (default 60) graded sequentially and in parallel, every row accounted for.

The class is the demo's six kinds of submission (reference, partial, untouched, raising, late, no checkpoint)
repeated round-robin, collected from one Canvas zip and graded with the pipeline, once per worker count (forced
regrade). Prints, per worker count: the wall time, wall seconds per student, the median and 90th percentile of
one student's own time (judge + nbgrader's rendering), and the status counts; checks that every student has
exactly one record and one gradebook row. Needs the trained reference (source/segmentation_hw/*.pt):
`make release` makes it. Target: at most 3 s per student with 2 workers on an idle 2-core machine.

Usage: python bench/grading_at_scale.py [--students 60] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
import zipfile
from collections import Counter
from pathlib import Path

from common import ROOT, print_table, use_test_classes, write_json

use_test_classes()
from classes import ASSIGNMENT, CONCEPTS, DUEDATE, build_class  # noqa: E402

from autograder.collect import collect  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.pipeline import GradeOptions, grade  # noqa: E402
from autograder.records import RecordStore  # noqa: E402
from autograder.release import release  # noqa: E402


def scaled_class(out: Path, students: int):
    """A course at ``out/course`` with the homework released and ``students`` simulated students collected: the
    demo's six kinds of submission round-robin, named ``s0000ada``, ``s0001ben``, ... Returns the ``Course``."""
    course = Course.create(out / "course", [ASSIGNMENT, CONCEPTS])
    for path in (ROOT / "source" / ASSIGNMENT).iterdir():  # reuse the trained reference when present
        if path.suffix == ".pt" or path.name.endswith("_results.json"):
            shutil.copy(path, course.root / "source" / ASSIGNMENT / path.name)
    release(course, [ASSIGNMENT], log=lambda *_: None)
    course.set_duedate(ASSIGNMENT, DUEDATE)
    six = out / "six.zip"
    build_class(course, course.root / "source" / ASSIGNMENT, six)
    big = out / "canvas_export.zip"
    with zipfile.ZipFile(six) as src, zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as dst:
        members = [m for m in src.namelist() if m.endswith((".ipynb", ".pt", ".json"))]
        by_student: dict[str, list[str]] = {}
        for m in members:
            by_student.setdefault(m.split("_")[0], []).append(m)
        kinds = sorted(by_student)
        stamps = ["student_id,timestamp"]
        times = dict(line.split(",") for line in src.read("timestamps.csv").decode().splitlines()[1:])
        for i in range(students):
            kind = kinds[i % len(kinds)]
            student = f"s{i:04d}{kind}"
            for m in by_student[kind]:
                dst.writestr(m.replace(kind, student, 1), src.read(m))
            stamps.append(f"{student},{times[kind]}")
        dst.writestr("timestamps.csv", "\n".join(stamps) + "\n")
    collect(course, ASSIGNMENT, big, log=lambda *_: None)
    return course


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 2}", help="comma-separated worker counts")
    parser.add_argument("--out", type=Path, default=ROOT / "demo_out" / "scale")
    args = parser.parse_args()
    course = scaled_class(args.out, args.students)
    from nbgrader.api import Gradebook

    table, points = [], Counter()
    for workers in (int(w) for w in args.workers.split(",")):
        start = time.perf_counter()
        results = grade(course, ASSIGNMENT, opts=GradeOptions(workers=workers, force=True), log=lambda *_: None)
        wall = time.perf_counter() - start
        with Gradebook(course.db_url) as gb:
            rows = len(gb.find_assignment(ASSIGNMENT).submissions)
        files = len(RecordStore(course, ASSIGNMENT).students())
        own = [r.timings.judge + r.timings.render for r in results]
        table.append({"students": args.students, "workers": workers, "wall_s": round(wall, 1),
                      "wall_s_per_student": round(wall / args.students, 2),
                      "median_student_s": round(statistics.median(own), 2),
                      "p90_student_s": round(statistics.quantiles(own, n=10)[-1], 2),
                      "result_files": files, "gradebook_rows": rows,
                      "statuses": dict(Counter(r.status for r in results))})
        print_table("grading at scale (simulated class, so far)", table)
        assert files == rows == args.students, "rows missing"
        points = Counter(r.auto_points for r in results)
    print_table("grading at scale (simulated class)", table)
    write_json("grading_at_scale", {"rows": table, "points": points})


if __name__ == "__main__":
    main()
