"""``grade``: autograde every submission (or one) in parallel workers, one student's failure never touching another.

Per student, in a worker thread:
1. a private scratch course (config, a copy of the gradebook, the submission) so that workers never share a
   database and the student's kernel never sees the master gradebook or another student's folder;
2. ``nbgrader autograde`` there, under a per-notebook wall-clock limit (and nbgrader's per-cell limit), for the
   executed notebook that formgrader and feedback show;
3. the judge (``autograder.judge``): the authoritative score of every autograded cell.
Then, in the main thread, one student at a time: the verdicts go into the master gradebook, the executed notebook
(with each check's name and message, hidden test code removed) into ``autograded/``, and a JSON result into
``grading/<assignment>/<student>.json``. A student whose result is up to date (same submission hash, same
grader version) is skipped, so an interrupted run can simply be started again.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat

from autograder.checks import ASSIGNMENT_CHECKS
from autograder.course import Course, nbgrader_env
from autograder.gradebook import max_scores, record_verdict
from autograder.judge import Verdict, grading_data, judge_submission
from autograder.sandbox import (JAIL_SETUP_FAILED, JAIL_UID_BASE, Jail, Limits, _limit, grader_secrets, hand_over,
                               jail_command, jail_reachability_problems, jail_supported, scratch_dir)

GRADER_VERSION = 1
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", flags=re.S)
MAX_FILE_BYTES = 200 * 1024**2  # larger files in a submission are not copied into the grading scratch
MAX_OUTPUT_CHARS = 20_000  # per text output of the autograded notebook (what TAs and students see)


@dataclass(frozen=True)
class GradeOptions:
    workers: int = 2
    notebook_timeout: float = 900.0
    cell_timeout: int = 120
    force: bool = False
    limits: Limits = Limits()


@dataclass
class Outcome:
    student: str
    status: str  # graded | invalid | timeout | crashed
    problems: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    autograded_dir: Path | None = None
    autograde_seconds: float = 0.0
    log_tail: str = ""
    scratch: Path | None = None


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


def _copy_gradebook(course: Course, scratch: Path) -> str:
    """A private SQLite copy of the gradebook for the worker's nbgrader run."""
    target = scratch / "gradebook.db"
    url = course.db_url
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return f"sqlite:///{target}"
    # A shared server database (PostgreSQL): rebuild the assignment's structure privately.
    for name in course.assignments():
        shutil.copytree(course.root / "source" / name, scratch / "source" / name, dirs_exist_ok=True)
    db = f"sqlite:///{target}"
    for name in course.assignments():
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force", "--no-execute"],
                       cwd=scratch, env=nbgrader_env(scratch, db), capture_output=True)
    return db


def _grade_one(course: Course, assignment: str, student: str, opts: GradeOptions, data, slot: int) -> Outcome:
    checks = ASSIGNMENT_CHECKS[assignment]
    submitted = course.root / "submitted" / student / assignment
    scratch = scratch_dir("grade-")
    outcome = Outcome(student, "graded", scratch=scratch)
    hide_dirs, hide_files = grader_secrets(course.root, course.db_url)
    jail = Jail(uid=JAIL_UID_BASE + slot, hide_dirs=hide_dirs, hide_files=hide_files)
    verdict = judge_submission(submitted, assignment, data, opts.limits, jail)
    outcome.verdict = verdict
    outcome.problems.extend(verdict.problems)
    if verdict.status == "invalid":
        outcome.status = "invalid"
        return outcome
    try:
        shutil.copy(course.root / "nbgrader_config.py", scratch / "nbgrader_config.py")
        # The notebook's grading path loads the checkpoint itself, weights-only (no code in it can run).
        too_big = [p.name for p in submitted.rglob("*") if p.is_file() and p.stat().st_size > MAX_FILE_BYTES]
        shutil.copytree(submitted, scratch / "submitted" / student / assignment,
                        ignore=lambda folder, names: [n for n in names if n in too_big])
        for name in too_big:
            outcome.problems.append(f"{name} is over {MAX_FILE_BYTES // 1024**2} MB and was not graded")
        db = _copy_gradebook(course, scratch)
        hand_over(scratch, jail.uid)
        start = time.perf_counter()
        env = nbgrader_env(scratch, db)
        env.update(HOME=str(scratch), JUPYTER_RUNTIME_DIR=str(scratch / ".runtime"), IPYTHONDIR=str(scratch / ".ipython"),
                   MPLCONFIGDIR=str(scratch / ".mpl"), JUPYTER_DATA_DIR=str(scratch / ".jupyter"))
        # One share of the cores per worker: oversubscribed OpenMP threads spin and slow every kernel many times over.
        threads = str(max(1, (os.cpu_count() or 1) // max(1, opts.workers)))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        command = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--student", student, "--force",
                   f"--Execute.timeout={opts.cell_timeout}", f"--ExecutePreprocessor.timeout={opts.cell_timeout}",
                   # the course's ignore list keeps weights out of the release; a submission's weights must be copied
                   "--CourseDirectory.ignore=['.ipynb_checkpoints', '*.pyc', '__pycache__']"]
        proc = subprocess.Popen(
            jail_command(command, Jail(jail.uid, hide_dirs, hide_files, loopback=True)),
            cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, preexec_fn=_limit(Limits(
                wall_seconds=opts.notebook_timeout, cpu_seconds=int(opts.notebook_timeout * 4),
                memory_bytes=opts.limits.memory_bytes, file_bytes=opts.limits.file_bytes)))
        try:
            log, _ = proc.communicate(timeout=opts.notebook_timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            log, _ = proc.communicate()
            outcome.status = "timeout"
            outcome.problems.append(f"the notebook ran past the {opts.notebook_timeout:.0f} s limit and was stopped; "
                                    "autograded cells are scored by the isolated checks")
        _kill_group(proc)  # background processes the notebook started
        outcome.autograde_seconds = time.perf_counter() - start
        outcome.log_tail = (log or "")[-3000:]
        autograded = scratch / "autograded" / student / assignment
        if proc.returncode == JAIL_SETUP_FAILED:
            outcome.status = "crashed"
            outcome.problems.append(f"the grader's sandbox could not start (a grader problem): {(log or '')[-300:]}")
        elif proc.returncode not in (0, None) and outcome.status == "graded":
            outcome.status = "crashed"
            outcome.problems.append(f"nbgrader could not execute the notebook (exit {proc.returncode}); "
                                    "autograded cells are scored by the isolated checks")
        if (autograded / checks.NOTEBOOK).is_file():
            outcome.autograded_dir = autograded
    except Exception as err:  # the worker itself failed: record it for this student only
        outcome.status = "crashed"
        outcome.problems.append(f"grading error: {type(err).__name__}: {err}")
    return outcome


def _kill_group(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _cap_outputs(nb) -> None:
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = out.get("text")
            if isinstance(text, str) and len(text) > MAX_OUTPUT_CHARS:
                out["text"] = text[:MAX_OUTPUT_CHARS] + f"\n[... {len(text) - MAX_OUTPUT_CHARS:,} characters cut by the grader]\n"
            for key, value in list(out.get("data", {}).items()):
                if isinstance(value, str) and len(value) > 50 * MAX_OUTPUT_CHARS:
                    out["data"][key] = "[output too large, removed by the grader]" if key.startswith("text") else ""


def annotate_notebook(path: Path, verdict: Verdict) -> None:
    """Puts each check's verdict into its cell's outputs, removes hidden test code and tracebacks, and caps
    gigantic outputs."""
    nb = nbformat.read(path, as_version=4)
    _cap_outputs(nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("grade"):
            continue
        cell.source = HIDDEN.sub("# (hidden tests run by the grader)", cell.source)
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                kept.append(nbformat.v4.new_output("stream", name="stdout",
                                                   text=f"{out.get('ename')}: {out.get('evalue')}\n"))
            else:
                kept.append(out)
        result = verdict.checks.get(gid)
        if result is not None:
            word = "PASSED" if result.passed else "FAILED"
            kept.append(nbformat.v4.new_output("stream", name="stdout",
                                               text=f"[grader] {gid}: {word} - {result.message}\n"))
        cell.outputs = kept
    nbformat.write(nb, path)


def _fallback_notebook(submitted: Path, target: Path, notebook: str) -> None:
    """No executed notebook (crash, timeout): show the submitted one so that answers can still be graded by hand."""
    target.mkdir(parents=True, exist_ok=True)
    if (submitted / notebook).is_file():
        shutil.copy(submitted / notebook, target / notebook)


def _record(course: Course, assignment: str, outcome: Outcome, digest: str) -> dict:
    checks = ASSIGNMENT_CHECKS[assignment]
    submitted = course.root / "submitted" / outcome.student / assignment
    target = course.root / "autograded" / outcome.student / assignment
    verdict = outcome.verdict
    if target.exists():
        shutil.rmtree(target)
    if outcome.autograded_dir is not None:
        shutil.copytree(outcome.autograded_dir, target)
    else:
        _fallback_notebook(submitted, target, checks.NOTEBOOK)
    if (target / checks.NOTEBOOK).is_file() and outcome.status != "invalid":
        try:
            annotate_notebook(target / checks.NOTEBOOK, verdict)
        except Exception as err:
            outcome.problems.append(f"the executed notebook could not be annotated ({type(err).__name__})")
    timestamp = read_timestamp(submitted)
    scores = {gid: r.passed for gid, r in verdict.checks.items()}
    written = record_verdict(course.db_url, assignment, outcome.student, checks.NOTEBOOK, scores, timestamp,
                             flagged=outcome.status != "graded" or bool(outcome.problems))
    maxima = max_scores(course.db_url, assignment, checks.NOTEBOOK)
    result = {
        "student": outcome.student, "assignment": assignment, "status": outcome.status,
        "problems": outcome.problems, "submission_hash": digest, "grader_version": GRADER_VERSION,
        "timestamp": timestamp.isoformat() if timestamp else None,
        "checks": {gid: {"passed": r.passed, "points": written.get(gid, 0.0), "max_points": maxima.get(gid),
                         "message": r.message} for gid, r in verdict.checks.items()},
        "auto_points": sum(written.values()), "auto_max": sum(maxima.get(g, 0.0) for g in verdict.checks),
        "miou": verdict.miou, "sandbox": verdict.sandbox,
        "seconds": {"judge": round(verdict.seconds, 2), "autograde": round(outcome.autograde_seconds, 2)},
    }
    out = course.results_dir(assignment) / f"{outcome.student}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    return result


def _up_to_date(course: Course, assignment: str, student: str, digest: str) -> bool:
    path = course.results_dir(assignment) / f"{student}.json"
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return previous.get("submission_hash") == digest and previous.get("grader_version") == GRADER_VERSION


def grade(course: Course, assignment: str, students: list[str] | None = None, opts: GradeOptions = GradeOptions(),
          log=print) -> list[dict]:
    """Grades the given students (default: every submitted one) and returns their result dicts."""
    if assignment not in ASSIGNMENT_CHECKS:
        raise SystemExit(f"unknown assignment {assignment!r}; valid: {sorted(ASSIGNMENT_CHECKS)}")
    everyone = course.submitted(assignment)
    students = students or everyone
    unknown = sorted(set(students) - set(everyone))
    if unknown:
        raise SystemExit(f"no submission of {assignment} for {unknown} in {course.root / 'submitted'}")
    unreachable = jail_reachability_problems() if jail_supported() else []
    if unreachable:
        raise SystemExit("cannot grade: student code runs in a jail as an unprivileged uid, and " + "; ".join(unreachable)
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
    data = grading_data() if hasattr(ASSIGNMENT_CHECKS[assignment], "CHECKPOINT") else None
    start = time.perf_counter()
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(max(1, opts.workers)):
        slots.put(slot)

    def work(student: str) -> Outcome:
        slot = slots.get()  # each worker slot has its own uid in the jail
        try:
            return _grade_one(course, assignment, student, opts, data, slot)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=max(1, opts.workers)) as pool:
        futures = {pool.submit(work, s): (s, d) for s, d in todo}
        for future in as_completed(futures):
            student, digest = futures[future]
            try:
                outcome = future.result()
            except Exception as err:  # never lose the others
                outcome = Outcome(student, "crashed", [f"grading error: {type(err).__name__}: {err}"],
                                  Verdict(assignment, status="invalid"))
                outcome.verdict.checks = {}
            try:
                result = _record(course, assignment, outcome, digest)
            finally:
                if outcome.scratch is not None:
                    shutil.rmtree(outcome.scratch, ignore_errors=True)
            results.append(result)
            log(f"  {student}: {result['status']:8s} {result['auto_points']:5.1f}/{result['auto_max']:.0f} auto points"
                + (f"  ({'; '.join(result['problems'])})" if result["problems"] else ""))
    if todo:
        log(f"graded {len(todo)} submission(s) of {assignment} in {time.perf_counter() - start:.1f} s "
            f"with {opts.workers} worker(s)")
    return sorted(results, key=lambda r: r["student"])
