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
from autograder.pipeline import GradeOptions, grade
from autograder.records import RecordStore
from classes import CONCEPTS, collect_concepts
from conftest import copy_course

pytestmark = pytest.mark.slow


def _points(records) -> dict[str, tuple]:
    return {r.student: (r.status, r.auto_points, {c.grade_id: c.points for c in r.checks}) for r in records}


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
def graded_locally(released_concepts, tmp_path_factory):
    """Four students (the concepts class's three and a copy of ada), graded by the local pool: the oracle. Tests
    grade their own copy of it (``graded_copy``)."""
    root = tmp_path_factory.mktemp("dask")
    course = copy_course(released_concepts, root / "course")
    collect_concepts(course, root / "concepts.zip", copies=1)
    return course, _points(grade(course, CONCEPTS, opts=GradeOptions(workers=2)))


@pytest.fixture
def graded_copy(graded_locally, tmp_path):
    course, oracle = graded_locally
    return copy_course(course.root, tmp_path / "course"), oracle


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


def test_a_worker_killed_mid_task_has_its_student_graded_elsewhere_once(graded_copy, own_cluster):
    course, oracle = graded_copy
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
    ben = next(r for r in results if r.student == "ben")
    assert not ben.sandbox["worker"].endswith(f":{killed['pid']}")  # re-run by a live worker
    assert _gradebook_rows(course) == {student: 1 for student in oracle}


def test_a_student_whose_grading_kills_a_worker_twice_is_recorded_as_crashed_and_the_run_goes_on(graded_copy):
    course, oracle = graded_copy

    def crashes_on_ben(assignment, submission, *args):
        if submission.student == "ben":
            os._exit(13)  # as a segfault in a native library would
        return grade_on_worker(assignment, submission, *args)

    lines = []
    results = {r.student: r for r in grade(course, CONCEPTS, opts=GradeOptions(force=True, cluster=DaskGrading(
        local_workers=2, task=crashes_on_ben)), log=lines.append)}
    assert results["ben"].status == "crashed"
    assert "stopped a grading worker twice" in results["ben"].problems[0]
    assert "--student ben" in results["ben"].problems[0]
    assert results["ben"].auto_points == 0
    others = {s: r for s, r in results.items() if s != "ben"}
    assert _points(list(others.values())) == {s: v for s, v in oracle.items() if s != "ben"}
    assert _gradebook_rows(course) == {student: 1 for student in oracle}
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:  # the TA sees it flagged
        assert gb.find_submission_notebook(CONCEPTS, CONCEPTS, "ben").flagged
        assert not gb.find_submission_notebook(CONCEPTS, CONCEPTS, "ada").flagged


def test_a_coordinator_stopped_half_way_resumes_without_grading_anyone_twice(graded_copy):
    course, oracle = graded_copy
    import shutil

    store = RecordStore(course, CONCEPTS)
    for student in ("ada2", "cara"):  # as if the coordinator died before these were recorded
        store.discard(student)
    shutil.rmtree(course.root / "autograded" / "ada2")
    kept = {r.student for r in store.records() if r.status != "crashed"}  # a crash is tried again
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


def test_the_slurm_job_script_asks_for_one_thread_and_offers_the_gpu_as_a_resource():
    from autograder.slurm import slurm_cluster

    cluster = slurm_cluster("gpu", memory="16GB", gpus_per_job=1, account="cv101", python="/opt/grader/bin/python")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH -A cv101", "#SBATCH --gres=gpu:1", "#SBATCH --cpus-per-task=2"):
        assert line in script
    command = script.strip().splitlines()[-1]
    assert command.startswith("/opt/grader/bin/python -m distributed.cli.dask_worker tcp://")
    assert "--nthreads 1" in command and "--resources GPU=1" in command and command.count("--nthreads") == 1


def test_the_example_sbatch_script_starts_a_worker_that_joins_with_its_gpu_resource(repo, tmp_path):
    """The job array's script run by hand as Slurm would run one array task: its worker joins the scheduler and
    offers GPU=1, which is what a cuda course's tasks ask for."""
    import subprocess
    import sys

    from distributed import Client, LocalCluster

    from autograder.cluster import _require_gpu_workers

    with LocalCluster(n_workers=0, dashboard_address=":0", silence_logs=50) as cluster, Client(cluster) as client:
        env = dict(os.environ, SCHEDULER=cluster.scheduler_address, GRADER_VENV=sys.prefix, TMPDIR=str(tmp_path),
                   SLURM_ARRAY_JOB_ID="77", SLURM_ARRAY_TASK_ID="3")
        worker = subprocess.Popen(["bash", str(repo / "autograder" / "examples" / "dask-workers.sbatch")], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            client.wait_for_workers(1, timeout=120)
            (info,) = client.scheduler_info()["workers"].values()
            assert info["name"] == "grading-77-3" and info["nthreads"] == 1 and info["resources"] == {"GPU": 1}
            _require_gpu_workers(client, "the job array")  # no refusal: a GPU worker is there
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)


def test_a_checkpoint_graded_on_a_worker_gets_the_verdict_it_gets_here(tmp_path):
    """The homework on the graded data: the checkpoint travels as bytes, the data is scattered to the worker, and
    the verdict (every check's fraction, the public and held-out mIoU) is the one the judge gives in this process."""
    from test_heldout_defence import lookup_submission  # its buffers carry the validation masks

    from autograder.checks import get_assignment
    from autograder.heldout import grading_data
    from autograder.judge import Verdict, judge_submission
    from autograder.sandbox import Limits
    from autograder.term import GradedSetting

    setting = GradedSetting()
    folder = lookup_submission(tmp_path / "submitted" / "mallory" / "segmentation_hw", setting, "memory")
    data = grading_data(tmp_path, setting)
    here = judge_submission(folder, "segmentation_hw", data)
    (student, answer), = DaskGrading(local_workers=1).outcomes(tmp_path, get_assignment("segmentation_hw"),
                                                              ["mallory"], data, Limits())
    there = Verdict.from_dict(answer["verdict"])
    assert student == "mallory" and there.status == here.status == "graded"
    assert {g: c.fraction for g, c in there.checks.items()} == {g: c.fraction for g, c in here.checks.items()}
    assert there.miou == pytest.approx(here.miou) and there.miou["public"] > 0.99 > 0.5 > there.miou["effective"]
    assert answer["worker_pid"] != os.getpid()
