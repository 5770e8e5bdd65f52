"""Run-time helpers: device choice, seeding, whether progress may be shown and how (text, never a widget)."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time

import numpy as np
import torch


def select_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if available, else Apple MPS, else CPU; any other string is passed to ``torch.device``."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds ``random``, numpy and torch (all devices); ``deterministic`` also pins cuDNN's algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def training_seed(seed: int | None = None, course_seed: int = 0) -> tuple[int, str]:
    """The seed a notebook trains with, and where it came from, in words.

    Every student trains with a seed of their own: two students whose code does the same arithmetic would otherwise
    hand in bit-identical weights (the same initial weights, the same batches), which a similarity check cannot tell
    from a copied checkpoint.

    Args:
        seed: the notebook's ``SEED``; a whole number is used as it is (to repeat a run, or to keep one seed on
            several machines).
        course_seed: the seed of the course's own runs (the recipe's ``TrainConfig.seed``).
    Returns:
        ``seed`` when given; else, where the course's ``course.toml`` is found (the instructor's reference, the test
        suite: ``course_lib.term.in_course_folder``), ``course_seed``, so the reference stays reproducible; else a
        seed derived from this login and machine (user name, host name, ``/etc/machine-id``): the same on every run
        here, different on another student's machine or account.
    """
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise ValueError(f"SEED must be a whole number from 0 to {2**31 - 1} (or None), got {seed!r}")
        return seed, "SEED in the first cell"
    from course_lib.term import in_course_folder

    if in_course_folder():
        return course_seed, "the recipe's: the course's own run"
    import getpass
    import hashlib
    import socket
    from pathlib import Path

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else ""
    machine = Path("/etc/machine-id")
    machine_id = machine.read_text().strip() if machine.is_file() else ""
    digest = hashlib.sha256(f"{user}\0{socket.gethostname()}\0{machine_id}\0{Path.home()}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31, f"your own, from your login {user!r} on this machine"


def bf16_instructions() -> tuple[str, ...]:
    """The CPU's bf16 instruction sets that torch uses, of ``("AVX512-BF16", "AMX")``. bf16 training is the same bit
    for bit only where these are the same (oneDNN picks AMX kernels where there are tiles): with the course's seed
    the QUICK reference reaches 0.5349 on an AMD EPYC with AVX512-BF16 and 0.5754 on an Intel Xeon with AMX."""
    checks = {"AVX512-BF16": getattr(torch.cpu, "_is_avx512_bf16_supported", None),
              "AMX": getattr(torch.cpu, "_is_amx_tile_supported", None)}
    return tuple(name for name, check in checks.items() if check is not None and check())


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 arithmetic in hardware (AVX512-BF16 or AMX), where bf16 autocast is faster."""
    return bool(bf16_instructions())


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool):
    """``torch.use_deterministic_algorithms(enabled)`` for the duration of a block, then the previous setting."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(enabled)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


@contextlib.contextmanager
def cpu_threads(count: int | None):
    """``torch.set_num_threads(count)`` for the duration of a block, then the previous count (``None``: unchanged)."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def is_grading() -> bool:
    """True inside ``nbgrader autograde``/``validate``, which set ``NBGRADER_EXECUTION``."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def in_notebook() -> bool:
    """True when running in a Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def progress_enabled(requested: bool | None) -> bool:
    """Progress bars never while grading (nbgrader zeroes a cell that writes to stderr and logs are noise);
    otherwise as requested, and by default only in a notebook or a terminal."""
    if is_grading() or requested is False:
        return False
    if requested:
        return True
    return in_notebook() or sys.stdout.isatty()


class Progress:
    """Training progress as one line of text, updated in place while a run goes on; never a widget.

    In a notebook the line is an IPython display of ``text/plain`` updated through its display id: JupyterLab shows
    it live, and a saved notebook, nbconvert's HTML and nbgrader's feedback keep its last state as plain text (a
    widget bar shows "Error displaying widget: model not found" once its kernel is gone, and a frozen ``0%``
    elsewhere). In a terminal it is tqdm's text bar on stdout (never stderr: nbgrader zeroes a graded cell that
    writes there). Disabled, it does nothing.

    ``track(iterable, total, desc)`` yields the items and redraws the line at most every ``interval`` seconds and at
    the end; ``close(text)`` leaves ``text`` as the line's last state (e.g. a summary of the run).
    """

    def __init__(self, enabled: bool = True, interval: float = 0.5):
        self.enabled, self.interval = enabled, interval
        self._handle = None  # the notebook's display, made on the first update
        self._notebook = enabled and in_notebook()

    def _show(self, text: str) -> None:
        if self._handle is None:
            from IPython.display import display

            self._handle = display({"text/plain": text}, raw=True, display_id=True)
        else:
            self._handle.update({"text/plain": text}, raw=True)

    def track(self, iterable, total: int | None = None, desc: str = ""):
        if not self.enabled:
            yield from iterable
            return
        from tqdm import tqdm

        if not self._notebook:
            yield from tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stdout, dynamic_ncols=True)
            return
        start = last = time.perf_counter()
        self._show(tqdm.format_meter(0, total, 0, prefix=desc))
        count = 0
        for count, item in enumerate(iterable, 1):
            yield item
            now = time.perf_counter()
            if now - last >= self.interval or count == total:
                self._show(tqdm.format_meter(count, total, now - start, prefix=desc))
                last = now

    def close(self, text: str | None = None) -> None:
        if self._notebook and text is not None:
            self._show(text)


def progress_bar(iterable, total: int | None = None, desc: str = "", enabled: bool = True):
    """The items of ``iterable`` with a ``Progress`` line of their own (text, never a widget)."""
    return Progress(enabled).track(iterable, total, desc)
