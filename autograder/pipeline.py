"""``grade``: judge every submission (or one) in parallel workers, one student's failure never touching another.

Per student, in a worker thread (or on a Dask worker: ``autograder.cluster``): the judge (``autograder.judge``) runs
the student's code in its sandbox (``autograder.sandbox``; as root, under the worker's own uid), and decides every
autograded cell. Then, in the
main thread, one student at a time:

1. the record (``autograder.records.build_record``): every check's points from the assignment's declaration, the
   problems and suspicions, the submission's digest and time;
2. ``nbgrader autograde`` through nbgrader's API, executing nothing (``autograder.rendering``), given the record in
   memory: it restores the instructor's cells, removes the hidden tests, puts each check's line into its cell,
   writes ``autograded/`` (with nbgrader's late penalty on the gradebook's scores of before: step 3 sets it again);
3. the record into the store (``RecordStore.save``): the gradebook's automatic scores and flag, then the record's
   file, which marks the student as done; then the late policy's penalty on those scores (``autograder.late``).

A student whose run hit the wall-clock limit while other runs shared the machine is judged again, alone, after
everyone else (``_outcomes``): a classmate's processes may have starved it. A notebook nbgrader cannot read (not JSON, another assignment) is shown as submitted. A student whose record is up
to date (same submission hash, same grader version, not crashed) is skipped, so an interrupted run can simply be
started again. Either engine, only this process writes the records and the gradebook.
"""

from __future__ import annotations

import hashlib
import queue
import shutil
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from autograder.assignment import Assignment
from autograder.checks import get_assignment
from autograder.cluster import DaskGrading
from autograder.course import Course
from autograder.errors import GraderError
from autograder.heldout import grading_data
from autograder.judge import Verdict, irregular_files, judge_submission
from autograder.late import apply_penalties, read_extensions, read_policy, with_lateness
from autograder.notebook import SubmissionError, read_notebook
from autograder.records import GRADER_VERSION, GradingRecord, RecordStore, after_rendering, build_record
from autograder.rendering import MAX_COPIED_FILE_BYTES, render_submission, too_big_files
from autograder.sandbox import JAIL_UID_BASE, Isolation, Limits, isolation_problem


@dataclass(frozen=True)
class GradeOptions:
    """How a grading run behaves: parallel workers, regrade up-to-date students, the sandbox's limits."""

    workers: int = 2
    force: bool = False
    limits: Limits = Limits()
    cluster: DaskGrading | None = None  # grade on a Dask cluster instead of the local pool (``autograder.cluster``)
    unsafe: bool = False  # where no sandbox can run, grade anyway (the TA's --unsafe); every row says so


@dataclass(frozen=True)
class Judged:
    """A worker's report on one student: the judge's verdict, or why grading failed (``crash``)."""

    student: str
    verdict: Verdict | None
    crash: str | None = None


def submission_hash(folder: Path) -> str:
    digest = hashlib.sha256(f"v{GRADER_VERSION}".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):  # links: never read
        digest.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_timestamp(folder: Path) -> tuple[datetime | None, str | None]:
    """The submission's time (UTC) from its ``timestamp.txt`` (written by ``collect``; None without one), and the
    problem to report when the file holds no time (nbgrader would stop on it: the rendering then reads the folder
    without it)."""
    from nbgrader.utils import parse_utc

    stamp = folder / "timestamp.txt"
    if not stamp.is_file():
        return None, None
    text = stamp.read_text(errors="replace").strip()
    try:
        when = parse_utc(text) if text else None
    except Exception:
        when = None
    if when is not None:
        return when.replace(tzinfo=timezone.utc), None  # nbgrader's UTC, made explicit
    said = f"holds {text[:60]!r}, which is not a time" if text else "is empty"
    return None, (f"the submission's timestamp.txt {said}: its time is unknown, so lateness was not judged; correct "
                  "it (collect's timestamps.csv, e.g. 2026-12-01 20:15:00 UTC) and grade this student again")


def _grade_one(course: Course, spec: Assignment, student: str, opts: GradeOptions, data, slot: int) -> Judged:
    submitted = course.root / "submitted" / student / spec.name
    isolation = Isolation(uid=JAIL_UID_BASE + slot, unsafe=opts.unsafe)
    return Judged(student, judge_submission(submitted, spec, data, opts.limits, isolation))


def _crashed(assignment: str, student: str, err: BaseException) -> Judged:
    from distributed import KilledWorker

    if isinstance(err, KilledWorker):
        why = ("grading this submission stopped a grading worker twice, so it was not graded; grade it alone "
               f"(`grade {assignment} --student {student}`) and look at its log")
    else:
        why = f"grading error: {type(err).__name__}: {err}"
    return Judged(student, None, why)


def _local_outcomes(course: Course, spec: Assignment, students: list[str], opts: GradeOptions, data):
    """The default engine: a pool of ``opts.workers`` threads on this machine, each slot with its own sandbox uid."""
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(max(1, opts.workers)):
        slots.put(slot)

    def work(student: str) -> Judged:
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
    """The Dask engine (``autograder.cluster``): each student's judge runs on a worker; the record is built here."""
    cluster = replace(opts.cluster, unsafe=opts.unsafe or opts.cluster.unsafe)
    for student, answer in cluster.outcomes(course.root, spec, students, data, opts.limits):
        if isinstance(answer, BaseException):
            yield _crashed(spec.name, student, answer)
            continue
        verdict = Verdict.from_dict(answer["verdict"])
        verdict.sandbox.update(worker=f"{answer['host']}:{answer['worker_pid']}", jailed=answer["jailed"])
        yield Judged(student, verdict)


def _timed_out(judged: Judged) -> bool:
    """Whether one of the student's sandboxed runs (the code run, the held-out run) hit the wall-clock limit."""
    sandbox = judged.verdict.sandbox if judged.verdict is not None else {}
    return any(isinstance(run, dict) and run.get("timed_out") for run in (sandbox, sandbox.get("heldout_run")))


def _outcomes(engine, course: Course, spec: Assignment, students: list[str], opts: GradeOptions, data, log):
    """``engine``'s verdicts, but a student whose run hit the wall-clock limit while other runs shared the machine is
    judged once more after every other student, alone, and that second verdict stands.

    A classmate's run can starve a concurrent one however its processes are capped (round 4: a submission's
    processes, each in a session of its own, took the CPU and an honest classmate on the other worker ran past
    300 s with 2/45); no result may depend on how busy the machine is. Alone, a run's time is its own: a submission
    that is slow by itself times out again and keeps that verdict (it costs the wall-clock limit twice)."""
    crowded = len(students) > 1 and (opts.cluster is not None or opts.workers > 1)
    again = []
    for judged in engine(course, spec, students, opts, data):
        if crowded and _timed_out(judged):
            again.append(judged.student)
            continue
        yield judged
    for student in again:
        log(f"  {student}: ran past the time limit beside other runs; judging it again, alone")
        for judged in engine(course, spec, [student], replace(opts, workers=1), data):
            if judged.verdict is not None:
                judged.verdict.sandbox["judged_again_alone"] = True  # the grader's record: why it took longer
            yield judged


def _fallback_notebook(submitted: Path, target: Path, notebook: str) -> None:
    """nbgrader could not read the notebook: show the submitted file so that answers can still be read by hand, if
    it is a notebook within the limits (``notebook.read_notebook``); else a one-cell notebook that says why."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    if (submitted / notebook).is_file() and not (submitted / notebook).is_symlink():  # a link is never followed
        try:
            read_notebook(submitted / notebook)
        except SubmissionError as err:
            nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
                f"The grader does not show this notebook: {err}")]), target / notebook)
        else:
            shutil.copy(submitted / notebook, target / notebook)


def _record(course: Course, spec: Assignment, store: RecordStore, judged: Judged, digest: str) -> GradingRecord:
    """The student's record, nbgrader's rendering of it, and both into the store (gradebook, then the record file)."""
    submitted = course.root / "submitted" / judged.student / spec.name
    submitted_at, stamp_problem = read_timestamp(submitted)
    odd = irregular_files(submitted)  # links, devices, FIFOs: never read, never copied
    left_out = sorted({*odd, *too_big_files(submitted)})
    problems = [stamp_problem] if stamp_problem else []
    problems += [f"{path} is not a regular file (a link, device or FIFO) and was left out of the graded copy"
                 if path in odd else f"{path} is over {MAX_COPIED_FILE_BYTES // 1024**2} MB and was left out of the "
                 "graded copy" for path in left_out]
    record = with_lateness(course, build_record(spec, judged.student, judged.verdict, digest=digest,
                                                submitted_at=submitted_at, problems=problems, crash=judged.crash))
    problem, written, seconds = None, (), 0.0
    if record.status == "invalid":
        _fallback_notebook(submitted, course.root / "autograded" / judged.student / spec.name, spec.notebook)
    else:
        rendering = render_submission(course, record, [path.name for path in left_out],
                                      without_timestamp=stamp_problem is not None)
        written, seconds = rendering.written, rendering.seconds
        if rendering.error is not None:
            last = rendering.error.strip().splitlines()[-1][:200] if rendering.error.strip() else "no detail"
            problem = f"nbgrader could not read the notebook; it is shown as submitted ({last})"
            _fallback_notebook(submitted, course.root / "autograded" / judged.student / spec.name, spec.notebook)
    record = after_rendering(record, written, problem, seconds)
    store.save(record, spec.notebook)
    apply_penalties(course, spec.name, [judged.student])  # nbgrader's penalty on the scores just written
    return record


def grade(course: Course, assignment: str | Assignment, students: list[str] | None = None,
          opts: GradeOptions = GradeOptions(), log=print) -> list[GradingRecord]:
    """Grades the given students (default: every submitted one) of ``assignment`` (a name, or a declaration) and
    returns their records, by student (up-to-date students' records as they were)."""
    spec = assignment if isinstance(assignment, Assignment) else get_assignment(assignment)
    store = RecordStore(course, spec.name)
    everyone = course.submitted(spec.name)
    students = students or everyone
    unknown = sorted(set(students) - set(everyone))
    if unknown:
        raise GraderError(f"no submission of {spec.name} for {unknown} in {course.root / 'submitted'}")
    problem = isolation_problem() if opts.cluster is None else None  # a cluster's workers check their own
    if problem and not opts.unsafe:
        raise GraderError(f"cannot grade: student code cannot be sandboxed on this machine ({problem}). Fix that, "
                          "or pass --unsafe on a machine that holds nothing else (every row will say so).")
    store.check_points(spec)
    read_extensions(course.root, read_policy(course.root).zone)  # a malformed late policy stops here, before grading
    todo, records = {}, []
    for student in students:
        digest = submission_hash(course.root / "submitted" / student / spec.name)
        kept = None if opts.force else store.up_to_date(student, digest)
        if kept is not None:
            records.append(kept)
            log(f"  {student}: up to date, skipped")
        else:
            todo[student] = digest
    data = grading_data(course.root) if spec.graded_on_data else None
    start = time.perf_counter()
    engine = _cluster_outcomes if opts.cluster is not None else _local_outcomes
    for judged in (_outcomes(engine, course, spec, list(todo), opts, data, log) if todo else ()):
        record = _record(course, spec, store, judged, todo[judged.student])
        records.append(record)
        log(f"  {record.student}: {record.status:8s} {record.auto_points:5.1f}/{record.auto_max:.0f} auto points"
            + (f"  ({'; '.join(record.notes)})" if record.notes else ""))
    if todo:
        where = opts.cluster.describe() if opts.cluster is not None else f"{opts.workers} local worker(s)"
        log(f"graded {len(todo)} submission(s) of {spec.name} in {time.perf_counter() - start:.1f} s on {where}")
        unjailed = sorted({str(r.sandbox["worker"]).rsplit(":", 1)[0] for r in records
                           if r.sandbox.get("jailed") is False and "worker" in r.sandbox})
        if unjailed:
            log(f"note: workers on {', '.join(unjailed)} graded WITHOUT a sandbox (--unsafe): limits held, but "
                "student code ran as the worker's user with its access (see autograder/slurm.py)")
    return sorted(records, key=lambda r: r.student)
