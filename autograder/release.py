"""``release`` (the instructor's command) prepares the term that ``course.toml`` declares: regenerate ``release/``
from ``source/`` for every assignment, ``nbgrader validate`` each source (every test passes) on the term's data and
tiers, ``nbgrader validate --invert`` each release (every test fails, the notebook still runs), scan the release and
``course_lib`` for leaked solutions, model answers and hidden tests, and only then mark the assignment released in
formgrader. Any failure stops with a non-zero exit and says what failed.

A source that trains (Assignment 1) validates with the term's reference checkpoints next to it
(``autograder.term_reference``): reused when they were made for this term, adopted from ``--reference DIR`` (checked:
data set, image size, mode, class count), or trained here by executing the source notebook with the term's
``MODE``/``DATA``/``IMAGE_SIZE`` injected (on the GPU when there is one), after saying how long that will take on
this machine (an estimate from a timed probe). The source is validated the same way: as it runs in this term, its
results-table model answer carrying the reference's own figures. A calibration table then shows how the reference
crosses the term's tiers. The checkpoints are ignored by git and never copied into the release.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from autograder.checks import get_assignment
from autograder.config import course_root_for_kernels
from autograder.errors import GraderError
from autograder.course import Course, kernel_config, nbgrader_config, run_nbgrader
from autograder.leaks import scan, secret_lines
from autograder.term import GradedSetting, ensure_term_secret
from autograder.term_reference import (ReferenceError, adopt_reference, calibration, check_reference, ensure_reference, parametrised,
                                       results_name)
from course_lib.answers import miou_disagreement, notebook_answers, parse_results_table

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in nbgrader's error text


class ReleaseError(GraderError):
    pass


def _execute(notebook: Path, course_root: Path, timeout: int | None = 1200, allow_errors: bool = False) -> list[str]:
    """Runs a notebook in its folder with the course's environment (``course_root_for_kernels``) and writes it back;
    returns its error outputs (with ``allow_errors`` every cell runs; otherwise the first error raises)."""
    from nbconvert.preprocessors import ExecutePreprocessor

    nb = nbformat.read(notebook, as_version=4)
    with course_root_for_kernels(course_root):
        ExecutePreprocessor(timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            config=kernel_config(course_root)).preprocess(
            nb, {"metadata": {"path": str(notebook.parent)}})
    nbformat.write(nb, notebook)
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def release(course: Course, assignments: list[str] | None = None, log=print, validate: bool = True,
            reference: Path | None = None, train_overrides: dict | None = None, allow_cpu: bool = False) -> None:
    """Prepares the declared term: regenerates, validates and scans each assignment's release; raises
    ``ReleaseError`` listing every failure. Creates the term's secret first when the course has none
    (``autograder.term``). Each release that passed everything (validation included) is then released to the
    course's own exchange (``nbgrader release_assignment``): students get the notebooks through the LMS, and the
    exchange copy is what makes formgrader show the assignment as released instead of "draft"; one that failed is
    never marked released.

    Args:
        validate: ``False`` skips the reference and the two ``nbgrader validate`` runs (for test fixtures that build
            many courses from the same sources: the suite validates the sources and the releases in their own tests).
        reference: a folder with reference checkpoints trained elsewhere (on a GPU machine), checked against the
            term's setting; a reference made for another setting is refused with the reason, before anything runs.
        train_overrides: ``TrainConfig`` fields replaced in the recipe when the reference is trained here (the tests'
            shorter runs, declared with them); ``None`` trains with the term's recipe.
        allow_cpu: train a GPU recipe's reference on a machine without a GPU (otherwise refused with the estimate).
    """
    assignments = assignments or course.assignments()
    setting = GradedSetting.read(course.root)
    log(f"term: {setting.describe()}, data {setting.data}, tiers {setting.tiers.describe()} (course.toml)")
    if reference is not None:  # refused before anything is regenerated, trained or released
        for spec in (get_assignment(a) for a in assignments):
            if spec.reference_artifacts:
                try:
                    check_reference(reference, spec, setting)
                except ReferenceError as err:
                    raise ReleaseError(str(err)) from err
    secret = ensure_term_secret(course.root)
    log(f"term secret: {secret} (grader-only; keep it off the students' machines)")
    (course.root / "exchange").mkdir(exist_ok=True)  # nbgrader_config.py's Exchange.root: formgrader wants it there
    failures = []
    for assignment in assignments:
        source_nb = course.root / "source" / assignment / f"{assignment}.ipynb"
        failed_before = len(failures)
        proc = run_nbgrader(["generate_assignment", assignment, "--force"], course.root, course.db_url)
        if proc.returncode != 0:
            failures.append(f"{assignment}: generate_assignment failed\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
            continue
        log(f"{assignment}: release/{assignment}/ regenerated")
        try:
            if validate:
                failures += _validate(course, assignment, source_nb, setting, log, reference, train_overrides,
                                      allow_cpu)
            elif reference is not None and get_assignment(assignment).reference_artifacts:
                adopt_reference(course.root / "source" / assignment, get_assignment(assignment), setting, reference, log)
        except ReferenceError as err:
            failures.append(f"{assignment}: {err}")
        leaks = scan([course.root / "release" / assignment, Path(__file__).resolve().parents[1] / "course_lib"],
                     secret_lines(source_nb))
        if leaks:
            failures.append(f"{assignment}: grader-only text in shipped files:\n  " + "\n  ".join(leaks[:10]))
            continue
        log(f"{assignment}: no solution, model answer or hidden test in release/ or course_lib/")
        if len(failures) > failed_before:
            log(f"{assignment}: NOT marked released in formgrader (it failed above)")
            continue
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


def _validate(course: Course, assignment: str, source_nb: Path, setting: GradedSetting, log,
              reference: Path | None = None, train_overrides: dict | None = None, allow_cpu: bool = False) -> list[str]:
    """Validates the source on the term (every test passes; its reference made first when this term has none) and
    the release inverted (it runs and fails every test). Returns the failures.

    An assignment graded on data is validated as it runs in this term: a copy of the source with the term's
    parameters injected and the reference's own results table as the model answer (``parametrised``)."""
    spec = get_assignment(assignment)
    failures = []
    folder = course.root / "source" / assignment
    ensure_reference(course.root, spec, setting, lambda nb, timeout: _execute(nb, course.root, timeout, True), log,
                     reference, train_overrides, allow_cpu)
    calibrated = calibration(folder, spec, setting) if spec.reference_artifacts else None
    if calibrated is not None:
        log(calibrated.table())
    with tempfile.TemporaryDirectory(prefix="validate-") as tmp:
        if spec.graded_on_data:
            work = Path(tmp) / assignment
            shutil.copytree(folder, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            table = _reference_table(folder, spec, source_nb, log)
            notebook = parametrised(source_nb, work / spec.notebook, setting, results_table=table,
                                    results_cell=spec.results_table_cell)
        else:
            notebook = source_nb
        with course_root_for_kernels(course.root):
            problems = validation_problems(notebook, course.root)
    if problems:
        failures.append(f"{assignment}: the source does not validate on this term ({setting.describe()}):\n  "
                        + "\n  ".join(problems))
    else:
        log(f"{assignment}: source validates on this term (every test passes)")
    with tempfile.TemporaryDirectory() as tmp:
        release_nb = Path(tmp) / f"{assignment}.ipynb"
        if spec.graded_on_data:
            parametrised(course.root / "release" / assignment / release_nb.name, release_nb, setting)
        else:
            shutil.copy(course.root / "release" / assignment / release_nb.name, release_nb)
        problems = validation_problems(release_nb, course.root, invert=True)
    if problems:
        failures.append(f"{assignment}: the release passes some test or does not run:\n  " + "\n  ".join(problems))
    else:
        log(f"{assignment}: release runs to the end and fails every test (validate --invert)")
    return failures


def _reference_table(folder: Path, spec, source_nb: Path, log) -> str | None:
    """The results table of the term's reference when the source's model answer shows other figures (then said
    in the log: the model answer in ``source/`` is the instructor's to update); ``None`` when they agree."""
    from course_lib.submission import results_table

    if not spec.reference_artifacts or spec.results_table_cell is None:
        return None
    metrics = json.loads((folder / results_name(spec.reference_artifacts[0])).read_text())["metrics"]
    shown = parse_results_table(notebook_answers(source_nb).get(spec.results_table_cell, "")).get("miou")
    if miou_disagreement(shown, metrics["miou"]) is None:
        return None
    log(f"{spec.name}: the source's model answer ({spec.results_table_cell}) shows mIoU "
        f"{'none' if shown is None else f'{shown:.4f}'}; this term's "
        f"reference measures {metrics['miou']:.4f}: validated with the reference's table (update the model answer in "
        "source/ for this term)")
    return results_table(metrics)
