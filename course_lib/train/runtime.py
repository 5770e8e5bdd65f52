"""Run-time helpers: device choice, seeding, whether progress bars may be shown."""

from __future__ import annotations

import contextlib
import os
import random
import sys

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


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 arithmetic in hardware (AVX512-BF16 or AMX), where bf16 autocast is faster."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


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


def progress_bar(iterable, total: int | None = None, desc: str = "", enabled: bool = True, leave: bool = False):
    """A tqdm bar: a widget in Jupyter, text on stdout (never stderr) elsewhere; a plain iterable when disabled."""
    if not enabled:
        return iterable
    if in_notebook():
        try:
            from tqdm.notebook import tqdm as notebook_tqdm
            import ipywidgets  # noqa: F401  (the widget bar needs it)

            return notebook_tqdm(iterable, total=total, desc=desc, leave=leave)
        except ImportError:
            pass
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=leave, file=sys.stdout, dynamic_ncols=True)
