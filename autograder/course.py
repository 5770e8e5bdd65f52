"""The course directory the TA pipeline works in (nbgrader's layout) and how nbgrader is called from it.

    <course>/nbgrader_config.py
    <course>/source/<assignment>/         instructor notebooks (solutions, hidden tests)
    <course>/release/<assignment>/        student versions
    <course>/downloaded/<assignment>/     LMS zip exports (nbgrader zip_collect)
    <course>/submitted/<student>/<assignment>/
    <course>/autograded/<student>/<assignment>/
    <course>/feedback/<student>/<assignment>/
    <course>/grading/records/<assignment>/          the grading records (``autograder.records.RecordStore``)
    <course>/grading/<assignment>/collect.json      what ``collect`` matched
    <course>/grading/export/                        CSV, statistics, histogram
    <course>/gradebook.db                            (or SEGMENTATION_GRADEBOOK_URL)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.config import COURSE_ROOT, GRADEBOOK_URL, REPO, environment
from autograder.errors import GraderError

@dataclass(frozen=True)
class Course:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike | None = None) -> "Course":
        root = Path(root or environment().course_root or Path.cwd()).resolve()
        if not (root / "nbgrader_config.py").is_file():
            raise GraderError(f"{root} is not a course directory (no nbgrader_config.py); pass --course DIR")
        return cls(root)

    @property
    def db_url(self) -> str:
        return environment().gradebook_url or f"sqlite:///{self.root / 'gradebook.db'}"

    @classmethod
    def create(cls, target: Path, assignments: list[str], sources: Path = REPO) -> "Course":
        """A fresh course directory at ``target`` (replacing what is there) with the course's ``nbgrader_config.py``,
        ``course.toml`` and the sources of ``assignments`` from ``sources`` (default: this repository), without
        trained weights or results: what ``release`` starts from."""
        if target.exists():
            shutil.rmtree(target)
        (target / "source").mkdir(parents=True)
        for name in ("nbgrader_config.py", "course.toml"):
            shutil.copy(sources / name, target / name)
        for assignment in assignments:
            shutil.copytree(sources / "source" / assignment, target / "source" / assignment,
                            ignore=shutil.ignore_patterns("*.pt", "*_results.json", ".ipynb_checkpoints"))
        return cls(target.resolve())

    def set_duedate(self, assignment: str, duedate: str) -> None:
        """What ``nbgrader db assignment add ASSIGNMENT --duedate=...`` does, through nbgrader's API (``duedate``
        as nbgrader reads it, e.g. ``"2026-12-01 23:59:00 UTC"``)."""
        from nbgrader.api import Gradebook
        from nbgrader.utils import parse_utc

        with Gradebook(self.db_url) as gb:
            gb.update_or_create_assignment(assignment, duedate=parse_utc(duedate))

    def assignments(self) -> list[str]:
        """The assignments the grader declares (``autograder.checks.ASSIGNMENTS``) that this course has a source of."""
        from autograder.checks import ASSIGNMENTS

        return [a for a in ASSIGNMENTS if (self.root / "source" / a).is_dir()]

    def submitted(self, assignment: str) -> list[str]:
        base = self.root / "submitted"
        return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir()) if base.is_dir() else []

    def results_dir(self, assignment: str) -> Path:
        """``grading/<assignment>/``: ``collect``'s report (the records have a store of their own)."""
        return self.root / "grading" / assignment


def nbgrader_config(root: Path):
    """The course's ``nbgrader_config.py`` as a traitlets ``Config`` (empty when the file is absent), for nbgrader's
    classes used through its API (converters, preprocessors, the validator)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(root) / "nbgrader_config.py"
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config() if path.is_file() else Config()


def kernel_config(root: Path):
    """Only the ``KernelManager`` section of the course's nbgrader configuration (its transport encryption), for the
    kernels this process starts itself with time limits of their own (``release``'s execution of a source notebook):
    the rest, nbgrader's per-cell timeout included, would override them."""
    from traitlets.config import Config

    config = Config()
    config.KernelManager = nbgrader_config(root).KernelManager
    return config


def nbgrader_env(root: Path, db_url: str) -> dict:
    """Environment of an nbgrader subprocess: this interpreter's bin/ first on PATH (nbgrader runs alembic),
    the course root and the gradebook given explicitly, no grading variable inherited."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env[COURSE_ROOT] = str(root)
    env[GRADEBOOK_URL] = db_url
    env.pop("NBGRADER_EXECUTION", None)
    env.pop("PYTHONPATH", None)  # the student's kernel must not see the grader's packages
    return env


def run_nbgrader(args: list[str], root: Path, db_url: str, timeout: float | None = None,
                 preexec_fn=None) -> subprocess.CompletedProcess:
    """``nbgrader <args>`` in ``root``; returns the completed process (check ``returncode``)."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=nbgrader_env(root, db_url),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          preexec_fn=preexec_fn)
