"""Shared fixtures. ``autograder`` and ``course_lib`` are installed packages (``make venv``), not path edits."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Under pytest-xdist (`make test` runs two workers) each worker keeps to one thread: two workers share two cores.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
# The suite's own term secret (a real term's is drawn by `release`); every judge run and nbgrader run inherits it.
os.environ.setdefault("SEGMENTATION_TERM_SECRET", "the-test-suite-term-secret")
# nbgrader runs its migration tool (alembic) by name when it creates a gradebook: this interpreter's bin/ comes first.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


REFERENCE_FIXTURES = {"executed_hw_course", "released_course", "graded_class"}


# Tests that need the trained reference but run after it exists, on whichever worker is free: the checks' own
# module. It is collected last, so the other worker reaches it only after its own modules, by which time the
# reference is trained (and if not, `trained_reference`'s lock makes it wait rather than train a second one).
LATE_REFERENCE_MODULES = {"test_hidden_checks"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    """Groups for ``pytest -n 2 --dist loadgroup`` (``make test``): the tests that need the trained reference run on
    one worker (the reference is trained once, there), except ``LATE_REFERENCE_MODULES``, a group of their own
    collected last (it balances the two workers: the reference's worker sets the suite's pace); every other module's
    tests stay together on a worker (their module fixtures are built once) while the reference trains on the other
    core."""
    late = set()
    for item in items:
        group = item.module.__name__
        if REFERENCE_FIXTURES & set(item.fixturenames):
            group = "reference-late" if group in LATE_REFERENCE_MODULES else "reference"
        item.add_marker(pytest.mark.xdist_group(group))
        if group == "reference-late":
            late.add(item)
    items.sort(key=lambda item: item in late)  # stable: the late group last, everything else in its order


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def executed_hw_course(tmp_path_factory):
    """A course directory whose source/segmentation_hw notebook has been executed top to bottom in QUICK mode,
    as an instructor would: both models trained, their checkpoints and results saved next to the notebook, and the
    Q1 answer filled with the printed table of what this machine trained (``notebooks.execute_notebook``). Shared by
    every test that needs a trained reference.

    Trained at most once per suite run; reused from ``tests/reference_cache.py`` when the code that trains it is
    unchanged (the training is deterministic, so the cached files are what this code makes)."""
    from notebooks import execute_notebook, fill_results_table, make_course
    from reference_cache import trained_reference

    course = make_course(tmp_path_factory.mktemp("hw"))
    folder = course / "source" / "segmentation_hw"
    from_cache = trained_reference(folder, lambda notebook: execute_notebook(notebook, timeout=1800, fill_table=True))
    print(f"homework reference: {'reused from the cache' if from_cache else 'trained now and cached'}")
    fill_results_table(folder / "segmentation_hw.ipynb")
    return course


@pytest.fixture(scope="session")
def released_concepts(tmp_path_factory) -> Path:
    """A course with the concepts assignment released (``generate_assignment`` and the leak scan; the validations of
    source and release have tests of their own): the one release of it that the tests share. Needs no trained
    reference. Tests copy it (``copy_course``) and never change it."""
    from autograder.course import Course
    from autograder.release import release
    from classes import ASSIGNMENT, CONCEPTS

    course = Course.create(tmp_path_factory.mktemp("released_concepts") / "course", [ASSIGNMENT, CONCEPTS])
    release(course, [CONCEPTS], validate=False, log=lambda *_: None)
    return course.root


@pytest.fixture(scope="session")
def released_toy(tmp_path_factory) -> Path:
    """The toy course of ``tests/toy.py``, released by nbgrader: the small fixture of the grader's own wing (record,
    store, rendering). Tests copy it (``copy_course``)."""
    from toy import toy_course

    return toy_course(tmp_path_factory.mktemp("toy") / "course").root


@pytest.fixture(scope="session")
def released_course(executed_hw_course, released_concepts, tmp_path_factory) -> Path:
    """``released_concepts`` with the homework released too and the trained reference beside the homework's source.
    Fixtures that grade a class copy it (``copy_course``) instead of releasing again."""
    import shutil

    from autograder.release import release
    from classes import ASSIGNMENT

    course = copy_course(released_concepts, tmp_path_factory.mktemp("released") / "course")
    for path in (executed_hw_course / "source" / ASSIGNMENT).iterdir():
        if path.suffix == ".pt" or path.name.endswith("_results.json"):
            shutil.copy(path, course.root / "source" / ASSIGNMENT / path.name)
    release(course, [ASSIGNMENT], validate=False, log=lambda *_: None)
    return course.root


def copy_course(released: Path, target: Path):
    """A private copy of a course (its own gradebook, records and files), at ``target``."""
    import shutil

    from autograder.course import Course

    shutil.copytree(released, target)
    return Course(target.resolve())


@pytest.fixture(scope="session")
def graded_class(released_course, tmp_path_factory):
    """The simulated class of ``tests/classes.py``, collected from its Canvas zip and graded with 2 workers, feedback
    and export done (provisional: no TA graded the written answers). Reuses the reference trained by ``executed_hw_course`` (no second training run). Shared: a test
    that changes it works on its own ``copy_course`` of it."""
    from autograder.collect import collect
    from autograder.course import Course
    from autograder.export import export
    from autograder.feedback import feedback
    from autograder.pipeline import GradeOptions, grade
    from autograder.roster import import_roster, read_roster
    from classes import ASSIGNMENT, CONCEPTS, DUEDATE, build_class, build_concepts_class, write_roster

    root = tmp_path_factory.mktemp("class")
    course = copy_course(released_course, root / "course")
    course.set_duedate(ASSIGNMENT, DUEDATE)
    build_class(course, course.root / "source" / ASSIGNMENT, root / "canvas.zip")
    import_roster(course.db_url, read_roster(write_roster(root / "roster.csv", with_ids=False)))  # ids: collect's
    report = collect(course, ASSIGNMENT, root / "canvas.zip")
    build_concepts_class(course, root / "concepts.zip")
    collect(course, CONCEPTS, root / "concepts.zip")
    records = {r.student: r for r in grade(course, ASSIGNMENT, opts=GradeOptions(workers=2))}
    concepts = {r.student: r for r in grade(course, CONCEPTS, opts=GradeOptions(workers=2))}
    # no TA has graded the written answers: the pages and the Canvas file are provisional (tests/test_provisional.py)
    pages = feedback(course, ASSIGNMENT, provisional=True)
    concept_pages = feedback(course, CONCEPTS, provisional=True)
    summaries = export(course, [ASSIGNMENT, CONCEPTS], provisional=True)
    return Course(course.root), {"collect": report, "records": records, "pages": pages, "summaries": summaries,
                                 "concepts": concepts, "concept_pages": concept_pages}


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server (``tests/postgres.py``) for the session; skipped, saying why, where none can run."""
    from postgres import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no PostgreSQL server for the shared-gradebook tests: {reason}")
    server = PostgresServer.start()
    yield server
    server.stop()
