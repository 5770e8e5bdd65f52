"""The trained homework reference for the test suite: made at most once per suite run, reused only when the
current code would make exactly the same one.

Executing the source notebook in QUICK mode trains both reference models (the main cost of the suite). Training is
deterministic on a CPU (``course_lib.train.loop``: epochs, not seconds; deterministic algorithms; the recipe's
thread count), so the result is a function of the code that trains it and of the machine's kind. The cache key
hashes exactly that: every file of ``course_lib``, the reference solution, the source notebook's code cells, and the
torch version, bf16 instruction sets (AVX512-BF16, AMX: ``course_lib.train.runtime.bf16_instructions``) and
architecture of this machine. Change any of them and the reference is trained again; no test can pass on weights
that the current code cannot make.

The cache lives in ``$SEGMENTATION_CACHE_DIR`` (default ``~/.cache/segmentation-course``); delete it to force a
retraining. ``SEGMENTATION_NO_CACHE=1`` ignores what earlier runs stored (the workers of one run still share what
it trains).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "segmentation_hw"
TRAINING_INPUTS = ("course_lib", "autograder/reference/segmentation_hw.py", f"source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
ARTIFACTS = (f"{ASSIGNMENT}.ipynb", f"{ASSIGNMENT}_checkpoint.pt", f"{ASSIGNMENT}_results.json",
             f"{ASSIGNMENT}_nodown_checkpoint.pt", f"{ASSIGNMENT}_nodown_results.json")


def cache_root() -> Path:
    return Path(os.environ.get("SEGMENTATION_CACHE_DIR") or Path.home() / ".cache" / "segmentation-course")


def reference_key(repo: Path = REPO) -> str:
    """sha256 over the code and notebook that train the reference and the machine facts that change its bits."""
    import torch

    from course_lib.train.runtime import bf16_instructions

    digest = hashlib.sha256()
    for entry in TRAINING_INPUTS:
        path = repo / entry
        files = sorted(p for p in path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(repo)).encode())
            digest.update(_code_of(file))
    # The recipe fixes the thread count (TrainConfig.num_threads, hashed with course_lib), so the machine's core
    # count does not enter the key; its instruction set does.
    machine = (torch.__version__, bf16_instructions(), platform.machine())  # AMX and AVX512-BF16 differ in bits
    digest.update(repr(machine).encode())
    return digest.hexdigest()[:20]


def _code_of(file: Path) -> bytes:
    """A file's bytes; for a notebook, only its code cells (the prose of the questions trains nothing)."""
    if file.suffix != ".ipynb":
        return file.read_bytes()
    import nbformat

    notebook = nbformat.read(file, as_version=4)
    return "\n# -- cell --\n".join(c.source for c in notebook.cells if c.cell_type == "code").encode()


RUN_FILE = "made_by_run"


def _run_id() -> str:
    """The id pytest-xdist shares among the workers of one run ('' outside xdist)."""
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", "")


def _usable(entry: Path) -> bool:
    """A complete entry; with ``SEGMENTATION_NO_CACHE=1``, only one that this very run trained."""
    if not all((entry / name).is_file() for name in ARTIFACTS):
        return False
    if not os.environ.get("SEGMENTATION_NO_CACHE"):
        return True
    made_by = entry / RUN_FILE
    return bool(_run_id()) and made_by.is_file() and made_by.read_text() == _run_id()


def trained_reference(folder: Path, train) -> bool:
    """Puts the executed notebook and the reference artefacts in ``folder``.

    Args:
        folder: ``source/segmentation_hw`` of a throw-away course (holds the source notebook).
        train: callable ``(notebook_path) -> None`` that executes the notebook in place (the expensive part).
    Returns:
        True when they came from the cache, False when they were trained now (and stored).
    """
    from filelock import FileLock

    entry = cache_root() / "reference" / reference_key()
    entry.parent.mkdir(parents=True, exist_ok=True)
    # One trainer at a time: a second test worker that needs the reference waits for the first one's entry instead
    # of training the same weights again beside it.
    with FileLock(str(entry) + ".lock"):
        if _usable(entry):
            for name in ARTIFACTS:
                shutil.copy(entry / name, folder / name)
            return True
        train(folder / f"{ASSIGNMENT}.ipynb")
        staging = Path(tempfile.mkdtemp(dir=entry.parent))  # written whole, then renamed: never half a cache entry
        for name in ARTIFACTS:
            shutil.copy(folder / name, staging / name)
        (staging / RUN_FILE).write_text(_run_id())
        shutil.rmtree(entry, ignore_errors=True)
        staging.rename(entry)
        return False
