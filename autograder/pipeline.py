"""``grade``: judge every submission (or one) in parallel workers, one student's failure never touching another.

Per student, in a worker thread: the judge (``autograder.judge``) runs the student's code in its sandbox, under
its own uid in the jail, and decides every autograded cell. Then, in the main thread, one student at a time:

1. a JSON result in ``grading/<assignment>/<student>.json`` (status, problems, each check's points and message);
2. ``nbgrader autograde`` through nbgrader's API, executing nothing (``autograder.rendering``): it restores the
   instructor's cells, removes the hidden tests, puts each check's line into its cell, writes ``autograded/`` and
   the gradebook's autograded scores, and assigns late penalties;
3. the judge's scores for every check (also those whose cell the student deleted) and the review flag, into the
   master gradebook (``autograder.gradebook``).

A notebook nbgrader cannot read (not JSON, another assignment) is shown as submitted. A student whose result is
up to date (same submission hash, same grader version, not crashed) is skipped, so an interrupted run can simply be
started again.

The judging runs in a local pool of threads (``GradeOptions.workers``) or, with ``GradeOptions.cluster``, on a Dask
cluster (``autograder.cluster``); either way only this process writes the gradebook and the result files.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from autograder.errors import GraderError
from autograder.checks import get_assignment
from autograder.cluster import DaskGrading
from autograder.assignment import Assignment
from autograder.course import Course
from autograder.gradebook import max_scores, record_verdict
from autograder.heldout import grading_data
from autograder.judge import Verdict, course_jail, judge_submission
from autograder.rendering import MAX_COPIED_FILE_BYTES, render_submission, too_big_files
from autograder.sandbox import JAIL_UID_BASE, Limits, jail_reachability_problems, jail_supported

GRADER_VERSION = 3  # 2: nbgrader no longer executes the notebook; 3: partial credit per part of a check


@dataclass(frozen=True)
class GradeOptions:
    """How a grading run behaves: parallel workers, regrade up-to-date students, the sandbox's limits."""

    workers: int = 2
    force: bool = False
    limits: Limits = Limits()
    cluster: DaskGrading | None = None  # grade on a Dask cluster instead of the local pool (``autograder.cluster``)


@dataclass
class Outcome:
    """A worker's report on one student: the judge's verdict, or why there is none."""

    student: str
    status: str  # graded | invalid | crashed
    problems: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    left_out: list[Path] = field(default_factory=list)  # submitted files too big to copy into autograded/


def submission_hash(folder: Path) -> str:
    digest = hashlib.sha256(f"v{GRADER_VERSION}".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_timestamp(folder: Path) -> datetime | None:
    from nbgrader.utils import parse_utc

    stamp = folder / "timestamp.txt"
    if not stamp.is_file():
        return None
    try:
        return parse_utc(stamp.read_text().strip())
    except Exception:
        return None


def _grade_one(course: Course, spec: Assignment, student: str, opts: GradeOptions, data, slot: int) -> Outcome:
    submitted = course.root / "submitted" / student / spec.name
    jail = course_jail(course.root, data, course.db_url, uid=JAIL_UID_BASE + slot)
    verdict = judge_submission(submitted, spec, data, opts.limits, jail)
    return _outcome(student, verdict, too_big_files(submitted))


def _crashed(assignment: str, student: str, err: BaseException) -> Outcome:
    from distributed import KilledWorker

    if isinstance(err, KilledWorker):
        why = ("grading this submission stopped a grading worker twice, so it was not graded; grade it alone "
               f"(`grade {assignment} --student {student}`) and look at its log")
    else:
        why = f"grading error: {type(err).__name__}: {err}"
    return Outcome(student, "crashed", [why], Verdict(assignment, status="invalid"))


def _local_outcomes(course: Course, spec: Assignment, students: list[str], opts: GradeOptions, data):
    """The default engine: a pool of ``opts.workers`` threads on this machine, each slot with its own jail uid."""
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(max(1, opts.workers)):
        slots.put(slot)

    def work(student: str) -> Outcome:
        slot = slots.get()
        try:
            return _grade_one(course, spec, student, opts, data, slot)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=max(1, opts.workers)) as pool:
        futures = {pool.submit(work, student): student for student in students}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as err:  # never lose the others
                yield _crashed(spec.name, futures[future], err)


def _cluster_outcomes(course: Course, spec: Assignment, students: list[str], opts: GradeOptions, data):
    """The Dask engine (``autograder.cluster``): each student's judge runs on a worker; the outcome is built here."""
    for student, answer in opts.cluster.outcomes(course.root, spec, students, data, opts.limits):
        if isinstance(answer, BaseException):
            yield _crashed(spec.name, student, answer)
            continue
        verdict = Verdict.from_dict(answer["verdict"])
        verdict.sandbox.update(worker=f"{answer['host']}:{answer['worker_pid']}", jailed=answer["jailed"])
        submitted = course.root / "submitted" / student / spec.name
        yield _outcome(student, verdict, too_big_files(submitted))


def _outcome(student: str, verdict: Verdict, left_out: list[Path]) -> Outcome:
    problems = list(verdict.problems) + [f"suspicion: {flag}" for flag in verdict.flags] + [f"{path} is over {MAX_COPIED_FILE_BYTES // 1024**2} MB and was left out of "
                                         "the graded copy" for path in left_out]
    return Outcome(student, "invalid" if verdict.status == "invalid" else "graded", problems, verdict, left_out)


def _fallback_notebook(submitted: Path, target: Path, notebook: str) -> None:
    """nbgrader could not read the notebook: show the submitted file so that answers can still be read by hand."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    if (submitted / notebook).is_file():
        shutil.copy(submitted / notebook, target / notebook)


def _result(assignment: str, outcome: Outcome, digest: str, maxima: dict[str, float],
            timestamp: datetime | None) -> dict:
    """The student's result: what export, the CLI and the tests read, and what nbgrader's rendering shows."""
    verdict = outcome.verdict
    checks = {gid: {"passed": r.passed, "fraction": r.fraction, "points": maxima.get(gid, 0.0) * r.fraction,
                    "max_points": maxima.get(gid), "message": r.message} for gid, r in verdict.checks.items()}
    return {
        "student": outcome.student, "assignment": assignment, "status": outcome.status,
        "problems": outcome.problems, "submission_hash": digest, "grader_version": GRADER_VERSION,
        "timestamp": timestamp.isoformat() if timestamp else None, "checks": checks,
        "auto_points": sum(c["points"] for c in checks.values()),
        "auto_max": sum(maxima.get(g, 0.0) for g in verdict.checks),
        "miou": verdict.miou, "sandbox": verdict.sandbox, "seconds": {"judge": round(verdict.seconds, 2)},
    }


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _record(course: Course, spec: Assignment, outcome: Outcome, digest: str, maxima: dict[str, float]) -> dict:
    """nbgrader's rendering, the judge's scores and the flag in the master gradebook, then the result file.

    The result file is written last: it is what marks a student as done, so a run killed half-way through a
    student grades that student again when restarted.
    """
    assignment = spec.name
    submitted = course.root / "submitted" / outcome.student / assignment
    timestamp = read_timestamp(submitted)
    result = _result(assignment, outcome, digest, maxima, timestamp)
    pending = course.results_dir(assignment) / ".pending"
    _write_json(pending / f"{outcome.student}.json", result)  # what the rendering reads
    start = time.perf_counter()
    error = ("the notebook is not gradable as it is" if outcome.status == "invalid" else
             render_submission(course.root, course.db_url, assignment, outcome.student, pending,
                               [path.name for path in outcome.left_out]))
    if error is not None:
        if outcome.status != "invalid":
            last = error.strip().splitlines()[-1][:200] if error.strip() else "no detail"
            outcome.problems.append(f"nbgrader could not read the notebook; it is shown as submitted ({last})")
        _fallback_notebook(submitted, course.root / "autograded" / outcome.student / assignment, spec.notebook)
    scores = {gid: r.fraction for gid, r in outcome.verdict.checks.items()}
    record_verdict(course.db_url, assignment, outcome.student, spec.notebook, scores, timestamp,
                   flagged=outcome.status != "graded" or bool(outcome.problems))
    result["problems"] = outcome.problems
    result["seconds"]["render"] = round(time.perf_counter() - start, 2)
    _write_json(course.results_dir(assignment) / f"{outcome.student}.json", result)
    (pending / f"{outcome.student}.json").unlink(missing_ok=True)
    return result


def _up_to_date(course: Course, assignment: str, student: str, digest: str) -> bool:
    path = course.results_dir(assignment) / f"{student}.json"
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (previous.get("submission_hash") == digest and previous.get("grader_version") == GRADER_VERSION
            and previous.get("status") != "crashed")  # a crash may have been the machine's: try again


def grade(course: Course, assignment: str, students: list[str] | None = None, opts: GradeOptions = GradeOptions(),
          log=print) -> list[dict]:
    """Grades the given students (default: every submitted one) and returns their result dicts."""
    spec = get_assignment(assignment)
    everyone = course.submitted(assignment)
    students = students or everyone
    unknown = sorted(set(students) - set(everyone))
    if unknown:
        raise GraderError(f"no submission of {assignment} for {unknown} in {course.root / 'submitted'}")
    unreachable = jail_reachability_problems() if jail_supported() else []
    if unreachable:
        raise GraderError("cannot grade: student code runs in a jail as an unprivileged uid, and " + "; ".join(unreachable)
                         + ". Let others enter that directory (chmod o+x), or keep the course's virtual environment "
                         "and checkout in a directory others can enter, then grade again.")
    todo, results = [], []
    for student in students:
        digest = submission_hash(course.root / "submitted" / student / assignment)
        if not opts.force and _up_to_date(course, assignment, student, digest):
            results.append(json.loads((course.results_dir(assignment) / f"{student}.json").read_text()))
            log(f"  {student}: up to date, skipped")
        else:
            todo.append((student, digest))
    data = grading_data(course.root) if spec.graded_on_data else None
    maxima = max_scores(course.db_url, assignment, spec.notebook)
    start = time.perf_counter()
    digests = dict(todo)
    engine = _cluster_outcomes if opts.cluster is not None else _local_outcomes
    for outcome in (engine(course, spec, list(digests), opts, data) if todo else ()):
        result = _record(course, spec, outcome, digests[outcome.student], maxima)
        results.append(result)
        log(f"  {outcome.student}: {result['status']:8s} {result['auto_points']:5.1f}/{result['auto_max']:.0f} auto "
            "points" + (f"  ({'; '.join(result['problems'])})" if result["problems"] else ""))
    if todo:
        where = opts.cluster.describe() if opts.cluster is not None else f"{opts.workers} local worker(s)"
        log(f"graded {len(todo)} submission(s) of {assignment} in {time.perf_counter() - start:.1f} s on {where}")
        unjailed = sorted({r["sandbox"]["worker"].rsplit(":", 1)[0] for r in results
                           if r["sandbox"].get("jailed") is False})
        if unjailed:
            log(f"note: workers on {', '.join(unjailed)} graded without the jail (not root there): limits held, but "
                "student code ran as the worker's user with its network (see autograder/slurm.py)")
    return sorted(results, key=lambda r: r["student"])
