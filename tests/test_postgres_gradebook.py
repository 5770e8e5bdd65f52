"""A gradebook on a real PostgreSQL server (``tests/postgres.py``), shared by TAs working at the same time.

Every command runs as a TA runs it, ``python -m autograder ...`` in its own process with the gradebook's URL in
``SEGMENTATION_GRADEBOOK_URL``, so each nbgrader command the pipeline calls is shown to honour the URL (nbgrader has
a known bug where some commands fall back to ``sqlite:///gradebook.db``: no such file may appear).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from classes import CONCEPTS, concepts_class, expected_concepts_failures, points_without

pytestmark = pytest.mark.slow

# the concepts class's automatic points, from the checks each student fails and the declaration
EXPECTED = {student: points_without(CONCEPTS, failed) for student, failed in expected_concepts_failures().items()}


def _cli(course, url: str, *args: str, wait: bool = True):
    env = dict(os.environ, SEGMENTATION_GRADEBOOK_URL=url)
    env.pop("SEGMENTATION_COURSE_ROOT", None)
    command = [sys.executable, "-m", "autograder", "--course", str(course.root), *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


class PeakConnections:
    """Polls the server's connections to one database while a run goes on."""

    def __init__(self, server, database: str):
        self.server, self.database, self.peak, self._stop = server, database, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.connections(self.database))
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def shared_course(postgres_server, tmp_path_factory):
    """The concepts assignment released and its class (the demo's three and a copy of each) collected, with the
    gradebook in a fresh PostgreSQL database."""
    url = postgres_server.new_database()
    bin_dir = os.path.dirname(sys.executable)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGMENTATION_GRADEBOOK_URL", url)
        patch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")  # nbgrader runs alembic on a new gradebook
        course = concepts_class(tmp_path_factory.mktemp("pg"), copies=3)
    return course, url, url.rsplit("/", 1)[1]


def _gradebook(url: str):
    from nbgrader.api import Gradebook

    return Gradebook(url)


def test_the_whole_pipeline_on_a_dask_cluster_writes_only_to_the_postgres_gradebook(shared_course, postgres_server):
    course, url, database = shared_course
    with PeakConnections(postgres_server, database) as connections:
        out = _cli(course, url, "grade", CONCEPTS, "--local-cluster", "2",
                   "--student", "ada", "--student", "ben", "--student", "cara")
    assert "on a local Dask cluster of 2 worker(s)" in out
    with _gradebook(url) as gb:  # a TA grades a written answer in formgrader
        gb.find_grade("q1_answer", CONCEPTS, CONCEPTS, "ada").manual_score = 2.5
        gb.db.commit()
    _cli(course, url, "feedback", CONCEPTS, "--provisional")  # ben's and cara's answers stay ungraded
    _cli(course, url, "export", CONCEPTS)

    assert not list(course.root.rglob("*.db")), "an nbgrader command fell back to a SQLite gradebook"
    with _gradebook(url) as gb:
        totals = {s.student.id: s.score for s in gb.find_assignment(CONCEPTS).submissions}
        auto = {s: gb.find_submission(CONCEPTS, s).notebooks[0] for s in EXPECTED}
        assert {s: sum(g.auto_score or 0 for g in nb.grades) for s, nb in auto.items()} == EXPECTED
    assert totals["ada"] == pytest.approx(EXPECTED["ada"] + 2.5)
    scores = (course.root / "grading" / "export" / f"{CONCEPTS}_scores.csv").read_text()
    assert "2.5" in scores.splitlines()[[line.split(",")[0] for line in scores.splitlines()].index("ada")]
    assert len(list((course.root / "feedback").glob(f"*/{CONCEPTS}/*.html"))) == 3
    assert connections.peak <= 10, f"{connections.peak} connections at once"
    assert postgres_server.connections(database) == 0, "connections left open after the run"


def test_two_tas_grading_at_once_lose_nothing_and_a_manual_grade_survives_the_others_regrade(
        shared_course, postgres_server):
    course, url, database = shared_course
    with PeakConnections(postgres_server, database) as connections:
        first = _cli(course, url, "grade", CONCEPTS, "--workers", "1", "--student", "ada2", "--student", "ben2",
                     wait=False)
        second = _cli(course, url, "grade", CONCEPTS, "--workers", "1", "--student", "cara2", wait=False)
        outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    with _gradebook(url) as gb:
        students = [s.student.id for s in gb.find_assignment(CONCEPTS).submissions]
        assert sorted(students) == sorted(set(students))  # no duplicated row
        assert {"ada2", "ben2", "cara2"} <= set(students)
        gb.find_grade("q2_answer", CONCEPTS, CONCEPTS, "cara2").manual_score = 1.5  # TA one, in formgrader
        gb.find_grade("test_t1_panoptic", CONCEPTS, CONCEPTS, "cara2").manual_score = 1.0  # an override
        gb.db.commit()
    _cli(course, url, "grade", CONCEPTS, "--student", "cara2", "--force")  # TA two re-grades the same student
    with _gradebook(url) as gb:
        assert gb.find_grade("q2_answer", CONCEPTS, CONCEPTS, "cara2").manual_score == 1.5
        override = gb.find_grade("test_t1_panoptic", CONCEPTS, CONCEPTS, "cara2")
        assert (override.manual_score, override.auto_score) == (1.0, 0.0)
        for student, points in {f"{s}2": points for s, points in EXPECTED.items()}.items():
            nb = gb.find_submission(CONCEPTS, student).notebooks[0]
            assert sum(g.auto_score or 0 for g in nb.grades) == points
    assert connections.peak <= 10
    assert postgres_server.connections(database) == 0


def test_a_long_run_of_gradebook_writes_does_not_pile_up_connections(shared_course, postgres_server):
    from autograder.checks import get_assignment
    from autograder.gradebook import write_record
    from autograder.judge import CheckResult, Verdict
    from autograder.records import build_record

    course, url, database = shared_course
    spec = get_assignment(CONCEPTS)
    verdict = Verdict(CONCEPTS, checks={gid: CheckResult(gid, "ok", 1.0) for gid in spec.checks})
    with PeakConnections(postgres_server, database) as connections:
        for i in range(120):
            write_record(url, build_record(spec, f"load{i % 40}", verdict, digest="d"), spec.notebook)
    assert connections.peak <= 3
    assert postgres_server.connections(database) == 0
    with _gradebook(url) as gb:
        assert len([s for s in gb.find_assignment(CONCEPTS).submissions if s.student.id.startswith("load")]) == 40
