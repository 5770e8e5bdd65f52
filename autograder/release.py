"""``release`` (the instructor's command): regenerate ``release/`` from ``source/`` for every assignment,
``nbgrader validate`` each source (every test passes), ``nbgrader validate --invert`` each release (every test
fails, the notebook still runs), and scan the release and ``course_lib`` for leaked solutions, model answers and
hidden tests. Any failure stops with a non-zero exit and says what failed.

A source that trains (Assignment 1) needs its reference checkpoints next to it to validate; when they are missing,
the source notebook is executed once in QUICK mode to make them (5 epochs per model: about 5 minutes on a
2-core CPU). They are ignored by git and never copied into the release.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from autograder.checks import get_assignment
from autograder.errors import GraderError
from autograder.course import Course, nbgrader_config, run_nbgrader
from autograder.leaks import scan, secret_lines
from autograder.term import ensure_term_secret



ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in nbgrader's error text


class ReleaseError(GraderError):
    pass


@contextlib.contextmanager
def course_environment(course_root: Path):
    """``SEGMENTATION_COURSE_ROOT`` set to ``course_root`` while kernels started here run a source notebook, whose
    hidden tests then judge with that course's setting and secret wherever the notebook was copied to."""
    previous = os.environ.get("SEGMENTATION_COURSE_ROOT")
    os.environ["SEGMENTATION_COURSE_ROOT"] = str(course_root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SEGMENTATION_COURSE_ROOT", None)
        else:
            os.environ["SEGMENTATION_COURSE_ROOT"] = previous


def _execute(notebook: Path, course_root: Path, timeout: int = 1200) -> None:
    from nbconvert.preprocessors import ExecutePreprocessor

    nb = nbformat.read(notebook, as_version=4)
    with course_environment(course_root):
        ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(notebook.parent)}})


def ensure_artifacts(course: Course, assignment: str, log=print) -> None:
    folder = course.root / "source" / assignment
    needed = get_assignment(assignment).reference_artifacts
    if all((folder / name).is_file() for name in needed):
        return
    log(f"{assignment}: training the reference once to make {', '.join(needed)} (QUICK mode, several minutes)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / assignment
        shutil.copytree(folder, work)
        _execute(work / f"{assignment}.ipynb", course.root)
        for path in work.iterdir():
            if path.suffix == ".pt" or path.name.endswith("_results.json"):
                shutil.copy(path, folder / path.name)


def release(course: Course, assignments: list[str] | None = None, log=print, validate: bool = True) -> None:
    """Regenerates, validates and scans each assignment's release; raises ``ReleaseError`` listing every failure.
    Creates the term's secret first when the course has none (``autograder.term``). Each clean release is also
    released to the course's own exchange (``nbgrader release_assignment``): students get the notebooks through the
    LMS, and the exchange copy is what makes formgrader show the assignment as released instead of "draft".

    ``validate=False`` skips the two ``nbgrader validate`` runs (for test fixtures that build many courses from
    the same sources: the suite validates the sources and the releases once, in their own tests).
    """
    assignments = assignments or course.assignments()
    secret = ensure_term_secret(course.root)
    log(f"term secret: {secret} (grader-only; keep it off the students' machines)")
    (course.root / "exchange").mkdir(exist_ok=True)  # nbgrader_config.py's Exchange.root: formgrader wants it there
    failures = []
    for assignment in assignments:
        source_nb = course.root / "source" / assignment / f"{assignment}.ipynb"
        proc = run_nbgrader(["generate_assignment", assignment, "--force"], course.root, course.db_url)
        if proc.returncode != 0:
            failures.append(f"{assignment}: generate_assignment failed\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
            continue
        log(f"{assignment}: release/{assignment}/ regenerated")
        if validate:
            failures += _validate(course, assignment, source_nb, log)
        leaks = scan([course.root / "release" / assignment, Path(__file__).resolve().parents[1] / "course_lib"],
                     secret_lines(source_nb))
        if leaks:
            failures.append(f"{assignment}: grader-only text in shipped files:\n  " + "\n  ".join(leaks[:10]))
            continue
        log(f"{assignment}: no solution, model answer or hidden test in release/ or course_lib/")
        proc = run_nbgrader(["release_assignment", assignment, "--force"], course.root, course.db_url)
        if proc.returncode != 0:
            failures.append(f"{assignment}: nbgrader release_assignment (to the course's exchange, for formgrader's "
                            f"status) failed\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        else:
            log(f"{assignment}: marked released in formgrader (a copy in the course's exchange/; students get it "
                "through the LMS)")
    if failures:
        raise ReleaseError("release FAILED:\n" + "\n".join(failures))
    log("release OK")


def validation_problems(notebook: Path, course_root: Path, invert: bool = False) -> list[str]:
    """nbgrader's ``Validator`` on ``notebook`` (executed in a kernel, the course's configuration): each failing
    test cell, or with ``invert`` each passing one, as a line; an empty list means success."""
    from nbgrader.validator import Validator

    results = Validator(config=nbgrader_config(course_root), invert=invert).validate(str(notebook))
    lines = []
    for kind, cells in results.items():
        for cell in cells:
            first = cell.get("source", "").strip().splitlines()[:1] or [""]
            detail = ANSI.sub("", cell.get("raw_error", "")).strip().splitlines()[-1:] or [""]
            lines.append(f"{kind}: {first[0][:100]}" + (f" -> {detail[0][:200]}" if detail[0] else ""))
    return lines


def _validate(course: Course, assignment: str, source_nb: Path, log) -> list[str]:
    """Validates the source (every test passes; trains the reference first if its checkpoints are missing) and the
    release inverted (it runs and fails every test). Returns the failures."""
    failures = []
    ensure_artifacts(course, assignment, log)
    with course_environment(course.root):
        problems = validation_problems(source_nb, course.root)
    if problems:
        failures.append(f"{assignment}: the source does not validate:\n  " + "\n  ".join(problems))
    else:
        log(f"{assignment}: source validates (every test passes)")
    with tempfile.TemporaryDirectory() as tmp:
        release_nb = Path(tmp) / f"{assignment}.ipynb"
        shutil.copy(course.root / "release" / assignment / release_nb.name, release_nb)
        problems = validation_problems(release_nb, course.root, invert=True)
    if problems:
        failures.append(f"{assignment}: the release passes some test or does not run:\n  " + "\n  ".join(problems))
    else:
        log(f"{assignment}: release runs to the end and fails every test (validate --invert)")
    return failures
