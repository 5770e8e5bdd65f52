"""Grading on a Slurm cluster: Dask workers as Slurm jobs (``dask-jobqueue``'s ``SLURMCluster``).

Run on a login node that can submit jobs (``sbatch``), from the course folder, with the grader installed in a
virtual environment that the compute nodes can reach::

    python -m autograder.slurm segmentation_hw --jobs 16 --partition gpu --gpus-per-job 1 --account cv101
    python -m autograder.slurm segmentation_hw --jobs 16 --partition gpu --dry-run   # print the job script only

Each job is one worker process with one thread (one student at a time) that offers ``GPU=1`` when the job has a
GPU. The coordinator (this process) reads ``submitted/``, sends each submission to a worker as bytes and writes the
gradebook and results; the workers need the grader's Python environment only, not the course folder.

Where a site cannot let the coordinator submit jobs, ``autograder/examples/dask-workers.sbatch`` starts a job array
of workers by hand; then grade with ``grade --scheduler tcp://HOST:8786``.

Each worker runs student code in the same bubblewrap sandbox as one machine (``autograder/sandbox.py``). Slurm jobs
are not root: there bubblewrap runs unprivileged, which needs the compute nodes to allow unprivileged user
namespaces (most do). A worker that cannot sandbox refuses its students (recorded as crashed, saying why) unless
``grade --unsafe`` was given; ``grade`` says in its log which hosts graded without a sandbox.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def slurm_cluster(partition: str | None, memory: str = "16GB", walltime: str = "04:00:00", gpus_per_job: int = 0,
                  account: str | None = None, python: str | None = None, scratch: str | None = None):
    """A ``dask_jobqueue.SLURMCluster`` whose jobs are single-threaded grading workers (not started: ``scale``).

    Args:
        partition: Slurm partition (``--partition``).
        memory: each job's memory; the sandbox's own limit is 8 GB per student (``sandbox.Limits``).
        gpus_per_job: 0, or 1 to give each worker a GPU (``--gres=gpu:1``) offered as the Dask resource ``GPU=1``.
        python: the interpreter of the grader's environment on the compute nodes (default: this one).
        scratch: the workers' local folder (default: the node's ``$TMPDIR``).
    """
    import dask
    from dask_jobqueue import SLURMCluster

    from autograder.cluster import ALLOWED_FAILURES, GPU_RESOURCE

    dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES})  # its scheduler runs here

    extra_args = ["--resources", f"{GPU_RESOURCE}={gpus_per_job}"] if gpus_per_job else []
    directives = [f"--gres=gpu:{gpus_per_job}"] if gpus_per_job else []
    return SLURMCluster(
        queue=partition, account=account, memory=memory, walltime=walltime,
        cores=1, processes=1, job_cpu=2,  # one thread (one student at a time); the sandbox's process has a core
        job_extra_directives=directives, worker_extra_args=extra_args, python=python or sys.executable,
        local_directory=scratch or "$TMPDIR", job_name="grading-worker",
        scheduler_options={"dashboard_address": ":0"},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.slurm", description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("--course", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=8, help="Slurm jobs, one grading worker each")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--account", default=None)
    parser.add_argument("--gpus-per-job", type=int, default=0)
    parser.add_argument("--memory", default="16GB")
    parser.add_argument("--walltime", default="04:00:00")
    parser.add_argument("--python", default=None, help="the grader's interpreter on the compute nodes")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="print the job script and submit nothing")
    args = parser.parse_args(argv)
    cluster = slurm_cluster(args.partition, args.memory, args.walltime, args.gpus_per_job, args.account, args.python)
    try:
        if args.dry_run:
            print(cluster.job_script())
            return 0
        from autograder.cluster import DaskGrading
        from autograder.course import Course
        from autograder.pipeline import GradeOptions, grade

        cluster.scale(jobs=args.jobs)
        print(f"{args.jobs} Slurm job(s) asked for; scheduler at {cluster.scheduler_address}")
        grade(Course.at(args.course), args.assignment,
              opts=GradeOptions(force=args.force, cluster=DaskGrading(scheduler=cluster.scheduler_address)))
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
