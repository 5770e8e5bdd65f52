"""The TA pipeline's one entry point: ``python -m autograder <command>``.

    release [--reference DIR]         prepare the declared term: its reference (trained here or from DIR, checked),
            [--allow-cpu]             regenerate, validate on the term's data and tiers, leak-scan (instructor)
    bundle [--out DIR]                what students receive: release notebooks, course_lib wheel, README (+ .zip)
    collect <assignment> <lms.zip>    LMS export → submitted/ (nbgrader zip_collect) with a report
    roster <file.csv>                 names, emails and LMS ids into the gradebook (Canvas gradebook or people CSV)
    grade <assignment> [--student S]  autograde in parallel workers; one student's failure stays theirs
          [--unsafe]                   grade where no sandbox can run (every row says so)
          [--local-cluster N | --scheduler tcp://HOST:PORT] [--resources GPU=1]   on a Dask cluster instead
    feedback <assignment>             nbgrader feedback for students whose grade is complete, hidden test code never
             [--provisional]          shown (--provisional: also the others, marked with the points still to grade)
    export [<assignment> ...]         CSVs, statistics, histogram, Canvas import file (incomplete grades left empty;
           [--provisional]          --provisional: exported, and counted)
    extend <student> <assignment>     a student's extension (extensions.csv; without an offset the course's time zone)
           --until TIME | --clear
    summary [<assignment> ...]        print the gradebook summary (writes nothing)
    similarity <assignment>           evidence of copying between every pair (code, checkpoints), for a person
    report [<assignment> ...]         the term's class report for the instructor: one HTML page
           [--out FILE]

Every command takes ``--course DIR`` (default: $SEGMENTATION_COURSE_ROOT or the current directory) and is safe
to run again: records and exports are rewritten, never duplicated, and manual grades are kept.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder.course import Course


def main(argv: list[str] | None = None) -> int:
    from autograder.errors import GraderError

    _environment_on_path()
    for stream in (sys.stdout, sys.stderr):  # a character the terminal cannot encode is escaped, never fatal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return _run(argv)
    except GraderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _environment_on_path() -> None:
    """This interpreter's bin folder first on PATH, so that the tools nbgrader runs by name (``alembic`` when it
    makes a gradebook) are this environment's, also when the TA runs ``.venv/bin/python -m autograder`` without
    activating it."""
    bin_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join(filter(None, [bin_dir, os.environ.get("PATH")]))


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=Path, default=None, help="course directory (holds nbgrader_config.py)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="prepare the declared term: reference, release/, validation (instructor)")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--reference", type=Path, default=None,
                   help="reference checkpoints trained elsewhere (a GPU machine), checked against course.toml's term")
    p.add_argument("--allow-cpu", action="store_true",
                   help="train a GPU recipe's reference on this machine without a GPU (hours; the estimate says)")
    p = sub.add_parser("bundle", help="the student bundle: release notebooks, course_lib wheel, environment, README")
    p.add_argument("--out", type=Path, default=None, help="bundle folder (default: <course>/student_bundle)")
    p = sub.add_parser("collect", help="LMS zip → submitted/")
    p.add_argument("assignment")
    p.add_argument("zip", type=Path)
    p = sub.add_parser("roster", help="names, emails and LMS user ids from a roster CSV into the gradebook")
    p.add_argument("csv", type=Path)
    p.add_argument("--merge", action="append", default=[], metavar="OLD",
                   help="confirm that the gradebook's OLD became the roster's login holding its Canvas id (a login "
                        "changed together with the name); repeatable")
    p = sub.add_parser("grade", help="autograde submissions")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", help="only this student (repeatable)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--code-timeout", type=float, default=None,
                   help="seconds a student's code may run in the sandbox (default: the sandbox's limit)")
    p.add_argument("--force", action="store_true", help="re-grade even unchanged submissions")
    p.add_argument("--unsafe", action="store_true",
                   help="where no sandbox can run (no bubblewrap, no user namespaces), grade anyway: student code "
                        "then runs with your access to this machine, and every row says so")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--local-cluster", type=int, metavar="N", default=0,
                       help="grade on a Dask LocalCluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDR", default=None,
                       help="grade on the Dask cluster of this scheduler (default: [cluster] scheduler of course.toml)")
    p.add_argument("--resources", metavar="NAME=N", default=None,
                   help="what each --local-cluster worker offers, e.g. GPU=1 (a cuda course's tasks ask for GPU=1)")
    p = sub.add_parser("feedback", help="generate feedback for students whose grade is complete")
    p.add_argument("assignment")
    p.add_argument("--provisional", action="store_true",
                   help="also for students with answers still to grade by hand, marked provisional")
    p = sub.add_parser("export", help="gradebook → CSV, statistics, histogram, Canvas CSV")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--provisional", action="store_true",
                   help="put incomplete grades (answers still to grade by hand) into the Canvas file too")
    p = sub.add_parser("extend", help="give a student more time for an assignment (course.toml's [late] applies)")
    p.add_argument("student")
    p.add_argument("assignment")
    until = p.add_mutually_exclusive_group(required=True)
    until.add_argument("--until", metavar="TIME", help="ISO 8601, e.g. 2026-12-08T23:59 (the course's time zone) or "
                                                       "2026-12-08T22:59:00+00:00")
    until.add_argument("--clear", action="store_true", help="remove the student's extension of the assignment")
    p.add_argument("--reason", default="", help="kept in extensions.csv")
    p = sub.add_parser("summary", help="print the gradebook summary (writes nothing)")
    p.add_argument("assignments", nargs="*")
    p = sub.add_parser("similarity", help="evidence of copying between every pair of students (HTML report + CSV)")
    p.add_argument("assignment")
    p.add_argument("--out", type=Path, default=None, help="folder (default: <course>/grading/similarity/<assignment>)")
    p = sub.add_parser("report", help="the term's class report: one HTML page (totals, items, written, late, flags)")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--out", type=Path, default=None, help="HTML file (default: <course>/grading/report/class_report.html)")
    args = parser.parse_args(argv)
    course = Course.at(args.course)

    if args.command == "release":
        from autograder.release import release

        release(course, args.assignments or None, reference=args.reference, allow_cpu=args.allow_cpu)
    elif args.command == "bundle":
        from autograder.bundle import build_bundle

        build_bundle(course, args.out)
    elif args.command == "collect":
        from autograder.collect import collect

        collect(course, args.assignment, args.zip)
    elif args.command == "roster":
        from autograder.roster import import_roster, read_roster

        import_roster(course.db_url, read_roster(args.csv), course_root=course.root,
                      confirmed=frozenset(args.merge))
    elif args.command == "grade":
        from dataclasses import replace

        from autograder.cluster import DaskGrading, configured_scheduler, parse_resources
        from autograder.pipeline import GradeOptions, grade
        from autograder.sandbox import Limits

        limits = Limits() if args.code_timeout is None else replace(Limits(), wall_seconds=args.code_timeout)
        scheduler = args.scheduler or (None if args.local_cluster else configured_scheduler(course.root))
        cluster = (DaskGrading(scheduler=scheduler, local_workers=args.local_cluster,
                               resources=parse_resources(args.resources))
                   if scheduler or args.local_cluster else None)
        opts = GradeOptions(workers=args.workers, force=args.force, limits=limits, cluster=cluster, unsafe=args.unsafe)
        grade(course, args.assignment, args.student, opts)
    elif args.command == "feedback":
        from autograder.feedback import feedback

        feedback(course, args.assignment, provisional=args.provisional)
    elif args.command == "export":
        from autograder.export import export, print_summary, score_tables

        export(course, args.assignments or None, provisional=args.provisional)
        print_summary(course, score_tables(course, args.assignments or None, log=lambda *_: None))
    elif args.command == "summary":
        from autograder.export import print_summary, score_tables

        print_summary(course, score_tables(course, args.assignments or None))
    elif args.command == "extend":
        from autograder.late import extend

        extend(course, args.student, args.assignment, None if args.clear else args.until, args.reason)
    elif args.command == "similarity":
        from autograder.similarity import similarity

        analysis, html = similarity(course, args.assignment, args.out)
        n = len(analysis.students)
        print(f"{n} students, {n * (n - 1) // 2} pairs scored, {len(analysis.reported())} reported: {html}")
        for pair in analysis.reported():
            print(f"  {pair.a} / {pair.b}: {pair.reasons[0]}" + (f" (+{len(pair.reasons) - 1} more)"
                                                                   if len(pair.reasons) > 1 else ""))
    elif args.command == "report":
        from autograder.report import class_report

        print(f"class report: {class_report(course, args.assignments or None, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
