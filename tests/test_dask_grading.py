"""Grading on a Dask cluster (``autograder.cluster``): the same verdicts as the local pool, and faults survived.

A ``LocalCluster`` of two single-threaded worker processes stands in for a cluster: its workers get each submission
as bytes and grade it in their own scratch folders, as remote workers would. The oracle is the local pool's grading
of the same class.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from autograder.cluster import ALLOWED_FAILURES, DaskGrading, Submission, grade_on_worker
from autograder.demo import CONCEPTS
from autograder.pipeline import GradeOptions, grade
from classes import concepts_class

pytestmark = pytest.mark.slow


def _points(results: list[dict]) -> dict[str, tuple]:
    return {r["student"]: (r["status"], r["auto_points"], {g: c["fraction"] for g, c in r["checks"].items()})
            for r in results}


def _gradebook_rows(course) -> dict[str, int]:
    """Submissions per student in the gradebook, and the automatic total of each."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        subs = gb.find_assignment(CONCEPTS).submissions
        counts = {}
        for sub in subs:
            counts[sub.student.id] = counts.get(sub.student.id, 0) + 1
        return counts


@pytest.fixture(scope="module")
def graded_locally(tmp_path_factory):
    """Six students (the demo's three and a copy of each), graded by the local pool: the oracle."""
    course = concepts_class(tmp_path_factory.mktemp("dask"), copies=3)
    return course, _points(grade(course, CONCEPTS, opts=GradeOptions(workers=2)))


@pytest.fixture
def own_cluster():
    """A LocalCluster the test can reach into (to kill its workers), with the grader's fault rule."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=50)
        client = Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def test_a_submission_travels_as_bytes_and_an_oversized_checkpoint_stays_oversized(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.ipynb").write_text("{}")
    with open(folder / "big.pt", "wb") as f:
        f.truncate(5000)
    sub = Submission.read(folder, "ada", ["a.ipynb", "big.pt", "missing.json"], max_bytes=4000)
    assert sub.files == {"a.ipynb": b"{}"} and sub.oversized == {"big.pt": 5000}
    out = tmp_path / "out"
    out.mkdir()
    sub.write(out)
    assert (out / "a.ipynb").read_text() == "{}" and (out / "big.pt").stat().st_size == 5000
    assert not (out / "missing.json").exists()


def test_a_worker_killed_mid_task_has_its_student_graded_elsewhere_once(graded_locally, own_cluster):
    course, oracle = graded_locally
    cluster, client = own_cluster
    pids = client.run(os.getpid)
    killed = {}

    def kill_the_worker_grading_ben() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            executing = client.run(lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing])
            for address, keys in executing.items():
                if any(key.endswith("-ben") for key in keys):
                    time.sleep(1.0)  # well inside the judge's run
                    os.kill(pids[address], signal.SIGKILL)
                    killed.update(address=address, pid=pids[address])
                    return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_the_worker_grading_ben)
    killer.start()
    results = grade(course, CONCEPTS, opts=GradeOptions(force=True, cluster=DaskGrading(
        scheduler=cluster.scheduler_address)), log=lambda line: None)
    killer.join()
    assert killed, "ben's task was never seen executing"
    assert _points(results) == oracle  # every student graded, with the local pool's verdicts
    ben = next(r for r in results if r["student"] == "ben")
    assert not ben["sandbox"]["worker"].endswith(f":{killed['pid']}")  # re-run by a live worker
    assert _gradebook_rows(course) == {student: 1 for student in oracle}


def test_a_student_whose_grading_kills_a_worker_twice_is_recorded_as_crashed_and_the_run_goes_on(graded_locally):
    course, oracle = graded_locally

    def crashes_on_ben(assignment, submission, *args):
        if submission.student == "ben":
            os._exit(13)  # as a segfault in a native library would
        return grade_on_worker(assignment, submission, *args)

    lines = []
    results = {r["student"]: r for r in grade(course, CONCEPTS, opts=GradeOptions(force=True, cluster=DaskGrading(
        local_workers=2, task=crashes_on_ben)), log=lines.append)}
    assert results["ben"]["status"] == "crashed"
    assert "stopped a grading worker twice" in results["ben"]["problems"][0]
    assert "--student ben" in results["ben"]["problems"][0]
    assert results["ben"]["auto_points"] == 0
    others = {s: r for s, r in results.items() if s != "ben"}
    assert _points(list(others.values())) == {s: v for s, v in oracle.items() if s != "ben"}
    assert _gradebook_rows(course) == {student: 1 for student in oracle}
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:  # the TA sees it flagged
        assert gb.find_submission_notebook(CONCEPTS, CONCEPTS, "ben").flagged
        assert not gb.find_submission_notebook(CONCEPTS, CONCEPTS, "ada").flagged


def test_a_coordinator_stopped_half_way_resumes_without_grading_anyone_twice(graded_locally):
    course, oracle = graded_locally
    import json
    import shutil

    for student in ("ada2", "ben2", "cara2"):  # as if the coordinator died before these were recorded
        (course.results_dir(CONCEPTS) / f"{student}.json").unlink()
    shutil.rmtree(course.root / "autograded" / "ada2")
    kept = {p.stem for p in course.results_dir(CONCEPTS).glob("*.json")
            if p.stem in oracle and json.loads(p.read_text())["status"] != "crashed"}  # a crash is tried again
    lines = []
    results = grade(course, CONCEPTS, opts=GradeOptions(cluster=DaskGrading(local_workers=1)), log=lines.append)
    assert {line.split(":")[0].strip() for line in lines if "up to date, skipped" in line} == kept
    assert _points(results) == oracle
    assert (course.root / "autograded" / "ada2" / CONCEPTS / f"{CONCEPTS}.ipynb").is_file()
    assert _gradebook_rows(course) == {student: 1 for student in oracle}


def test_a_cuda_course_without_gpu_workers_is_refused_before_anything_runs(graded_locally, own_cluster):
    from autograder.cluster import _require_gpu_workers
    from autograder.errors import GraderError

    _, client = own_cluster
    with pytest.raises(GraderError, match="--resources GPU=1"):
        _require_gpu_workers(client, "this cluster")
