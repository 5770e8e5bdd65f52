"""Grading on a Dask cluster when one machine is not enough (``grade --local-cluster N`` or ``--scheduler ADDR``).

The coordinating process (the TA's ``grade``) stays the only one that reads ``submitted/`` and writes the
gradebook and the grading records. Each student's grading is one Dask task:

- what the judge reads of the submission (notebook, results file, checkpoint; ``judge.judged_files``) travels with
  the task as bytes, so the workers need no shared filesystem, only the grader's packages;
- the graded data (``heldout.GradingData``: images and masks) is scattered to every worker once; the term's secret
  never leaves the coordinator;
- the worker hands the bytes to ``judge.judge_files`` (nothing is written to its disk), student code in the same
  sandbox as on one machine, under a uid of its own (``worker_jail_uid``); it returns plain data: the verdict as a
  dict and where it ran.

Faults: a worker that dies mid-task (killed, out of memory, its machine lost) has its students re-run on another
worker by Dask's scheduler. A student whose grading kills a worker ``ALLOWED_FAILURES + 1`` times is recorded as
crashed (Dask's ``KilledWorker``) and the run goes on. A coordinator stopped half-way resumes like the local pool:
a student's record is written last, and up-to-date students are skipped.

GPUs are worker resources: when ``course.toml`` says ``evaluate_on = "cuda"`` each task asks for ``GPU=1``
(start the workers with ``--resources GPU=1``); a cluster without such a worker is refused before anything runs.
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from autograder.errors import GraderError

ALLOWED_FAILURES = 1  # a task may kill one worker and is re-run; the second death records the student as crashed
GPU_RESOURCE = "GPU"


@dataclass(frozen=True)
class Submission:
    """What travels to a worker for one student: the files the judge reads, as bytes.

    Attributes:
        student: the student's id.
        files: ``{name: content}`` of the judged files present in the submission (regular files only, read without
            following links: ``judge.read_files``).
        oversized: ``{name: size in bytes}`` of judged files too big to load (the judge refuses them by size).
        refused: ``{name: why}`` of judged files that are not regular files (a link, a device, a FIFO).
    """

    student: str
    files: dict[str, bytes]
    oversized: dict[str, int]
    refused: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path, student: str, names: list[str], max_bytes: int) -> "Submission":
        from autograder.judge import read_files

        found = read_files(folder, {name: max_bytes for name in names})
        refused = {name: why for name, why in found.refused.items() if name not in found.oversized}
        return cls(student, found.files, found.oversized, refused)

    def write(self, folder: Path) -> None:
        for name, content in self.files.items():
            (folder / name).write_bytes(content)
        for name, size in self.oversized.items():
            with open(folder / name, "wb") as f:
                f.truncate(size)

    def submitted(self, max_bytes: int):
        """What the judge takes (``judge.Submitted``), without writing anything to disk."""
        from autograder.judge import Submitted, too_big

        return Submitted(dict(self.files), {**self.refused, **{n: too_big(n, max_bytes) for n in self.oversized}},
                         dict(self.oversized))


_thread_slots = threading.local()
_slot_counter = iter(range(1 << 30))
_slot_lock = threading.Lock()


def worker_jail_uid() -> int:
    """A jail uid no other grading thread on this machine uses: from the worker's process id and its thread's slot
    (the local pool uses ``JAIL_UID_BASE`` + 0, 1, ...; these start 1,000 above)."""
    from autograder.sandbox import JAIL_UID_BASE

    if not hasattr(_thread_slots, "slot"):
        with _slot_lock:
            _thread_slots.slot = next(_slot_counter)
    return JAIL_UID_BASE + 1000 + (os.getpid() % 4_000_000) * 8 + _thread_slots.slot % 8


def grade_on_worker(assignment: str, submission: Submission, data, limits, course_root: str,
                    unsafe: bool = False) -> dict:
    """The Dask task: judges one submission on this worker and returns plain data.

    Args:
        data: the scattered ``GradingData`` (None for an assignment not graded on data).
        course_root: the coordinator's course folder (unused: the sandbox sees none of this machine's folders).
        unsafe: grade without a sandbox where this worker has none (the TA's ``--unsafe``).
    Returns:
        ``{"verdict": Verdict.to_dict(), "worker_pid": int, "host": str, "jailed": bool}``.
    """
    import socket

    from autograder.judge import MAX_CHECKPOINT_BYTES, judge_files
    from autograder.sandbox import Isolation, jail_supported

    isolation = Isolation(uid=worker_jail_uid(), unsafe=unsafe)
    verdict = judge_files(submission.submitted(MAX_CHECKPOINT_BYTES), assignment, data, limits, isolation)
    return {"verdict": verdict.to_dict(), "worker_pid": os.getpid(), "host": socket.gethostname(),
            "jailed": jail_supported()}


@dataclass
class DaskGrading:
    """Where ``grade`` sends its students: a running scheduler's address, or a local cluster of ``local_workers``.

    Attributes:
        scheduler: ``tcp://host:port`` of a running Dask scheduler (its workers need the grader installed).
        local_workers: start a ``LocalCluster`` of this many single-threaded worker processes instead.
        resources: for a local cluster, what each worker offers (``{"GPU": 1}``).
        task: the function each task runs (``grade_on_worker``; the fault tests pass one that crashes).
    """

    scheduler: str | None = None
    local_workers: int = 0
    resources: dict[str, float] | None = None
    task: Callable = grade_on_worker
    unsafe: bool = False  # workers without a sandbox grade anyway (the TA's --unsafe); every row says so

    def describe(self) -> str:
        return self.scheduler or f"a local Dask cluster of {self.local_workers} worker(s)"

    def client(self):
        """A ``dask.distributed.Client`` (and the ``LocalCluster`` it owns, or None) with this run's fault rule."""
        import dask
        from distributed import Client, LocalCluster

        dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES})
        if self.scheduler:
            try:
                return Client(self.scheduler, timeout="20s"), None
            except (OSError, TimeoutError) as err:
                raise GraderError(f"cannot reach the Dask scheduler at {self.scheduler} ({err}): start it "
                                  "(`dask scheduler`) and its workers, or grade with --local-cluster N") from err
        cluster = LocalCluster(n_workers=max(1, self.local_workers), threads_per_worker=1, processes=True,
                               resources=self.resources, dashboard_address=":0", silence_logs=40)
        return Client(cluster), cluster

    def outcomes(self, course_root: Path, spec, todo: list[str], data, limits) -> Iterator[tuple[str, dict | Exception]]:
        """Runs ``task`` for each student of ``todo`` on the cluster; yields ``(student, plain result or error)`` in
        the order they finish. The error of a student whose grading killed workers is Dask's ``KilledWorker``."""
        from distributed import as_completed

        from autograder.judge import MAX_CHECKPOINT_BYTES, judged_files

        client, cluster = self.client()
        try:
            if self.scheduler:
                _apply_fault_rule(client)
                _wait_for_a_worker(client, self.scheduler)
            needs = {GPU_RESOURCE: 1} if data is not None and data.setting.evaluate_on == "cuda" else None
            if needs:
                _require_gpu_workers(client, self.describe())
            shared = client.scatter(data, broadcast=True) if data is not None else None
            names = judged_files(spec)

            def submit(student: str):
                folder = course_root / "submitted" / student / spec.name
                submission = Submission.read(folder, student, names, MAX_CHECKPOINT_BYTES)
                return client.submit(self.task, spec.name, submission, shared, limits, str(course_root),
                                     **({"unsafe": True} if self.unsafe else {}),
                                     key=f"grade-{spec.name}-{student}", resources=needs, pure=False)

            # One task in flight per worker thread, topped up as each finishes (workers may join late, as Slurm
            # jobs do). A class of thousands never sits in memory at once, and no student waits in a worker's queue
            # behind another: Dask charges every task held by a worker that dies, and a student queued behind one
            # that kills workers would be charged for it.
            waiting = iter(todo)
            futures: dict = {}
            running = as_completed(loop=client.loop)

            def top_up() -> None:
                while len(futures) < max(1, sum(client.nthreads().values())):
                    student = next(waiting, None)
                    if student is None:
                        return
                    future = submit(student)
                    futures[future] = student
                    running.add(future)

            top_up()
            for future in running:
                student = futures.pop(future)
                top_up()  # before the coordinator records this one: the workers keep busy meanwhile
                try:
                    answer = future.result()
                except Exception as err:  # KilledWorker, or the task's own error: that student's, never the run's
                    answer = err
                future.release()
                yield student, answer
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


WORKER_WAIT_SECONDS = 900


def _wait_for_a_worker(client, where: str) -> None:
    """Waits until at least one worker has joined (Slurm jobs may sit in the queue a while)."""
    if client.nthreads():
        return
    print(f"waiting up to {WORKER_WAIT_SECONDS // 60} min for a worker to join {where} ...")
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except TimeoutError as err:
        raise GraderError(f"no worker joined the Dask scheduler at {where} within {WORKER_WAIT_SECONDS // 60} min: "
                          "start workers (`dask worker ADDR --nthreads 1`, or the Slurm jobs of "
                          "autograder/slurm.py) and grade again; nothing was graded") from err


def _apply_fault_rule(client) -> None:
    """A running scheduler re-runs a task after ``allowed-failures`` worker deaths (Dask's default: 3); this run
    wants ``ALLOWED_FAILURES``. Set on the scheduler when it allows it, else its own rule stands (said in the log)."""
    def set_rule(dask_scheduler, allowed: int = ALLOWED_FAILURES) -> int:
        dask_scheduler.allowed_failures = allowed
        return dask_scheduler.allowed_failures

    try:
        client.run_on_scheduler(set_rule)
    except Exception as err:  # a scheduler that refuses remote calls keeps its configured rule
        print(f"note: the scheduler kept its own allowed-failures rule ({type(err).__name__}); set "
              f"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES={ALLOWED_FAILURES} where it starts")


def _require_gpu_workers(client, where: str) -> None:
    workers = client.scheduler_info().get("workers", {}).values()
    if not any(w.get("resources", {}).get(GPU_RESOURCE, 0) >= 1 for w in workers):
        raise GraderError(f"this course evaluates checkpoints on cuda (course.toml) but no worker of {where} offers "
                          f"a {GPU_RESOURCE} resource: start the workers with `--resources {GPU_RESOURCE}=1` "
                          "(or `grade --local-cluster N --resources GPU=1` on a GPU machine)")


def parse_resources(text: str | None) -> dict[str, float] | None:
    """``"GPU=1,MEM=4"`` → ``{"GPU": 1.0, "MEM": 4.0}`` (None for None or "")."""
    if not text:
        return None
    try:
        pairs = (item.split("=", 1) for item in text.split(","))
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError as err:
        raise GraderError(f"--resources {text!r}: write NAME=AMOUNT[,NAME=AMOUNT], e.g. GPU=1") from err


def configured_scheduler(course_root: Path) -> str | None:
    """``[cluster] scheduler`` of ``<course>/course.toml`` (None when absent): the default of ``grade --scheduler``."""
    from autograder.term import CONFIG_FILE

    path = Path(course_root) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return tomllib.loads(path.read_text()).get("cluster", {}).get("scheduler") or None
    except tomllib.TOMLDecodeError as err:
        raise GraderError(f"{path}: {err}") from err
