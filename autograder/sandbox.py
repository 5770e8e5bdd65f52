"""Running untrusted code in a child process with limits.

What is applied (on Linux; each line says if it is unavailable):
- a separate process and process group, killed as a whole at the wall-clock limit (background children too);
- ``RLIMIT_CPU`` (CPU seconds), ``RLIMIT_AS`` (address space), ``RLIMIT_FSIZE`` (largest file it may write),
  ``RLIMIT_NPROC`` where the user is not root (fork bombs), ``RLIMIT_CORE`` 0;
- an empty working directory holding only copies of what it needs, a minimal environment, ``python -I``;
- stdout/stderr to files, of which only the last few kilobytes are read back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import resource
except ImportError:  # not on Windows
    resource = None


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 300.0
    cpu_seconds: int = 600
    memory_bytes: int = 8 * 1024**3
    file_bytes: int = 512 * 1024**2
    processes: int = 256


@dataclass
class RunResult:
    returncode: int | None
    timed_out: bool
    seconds: float
    stdout_tail: str
    stderr_tail: str


def active_protections() -> list[str]:
    """Human-readable list of the protections this machine supports (for the README and reports)."""
    items = ["own process group, killed at the wall-clock limit", "minimal environment, python -I, scratch directory"]
    if resource is not None:
        items += ["RLIMIT_CPU", "RLIMIT_AS (memory)", "RLIMIT_FSIZE (file size)"]
        items.append("RLIMIT_NPROC" if os.geteuid() != 0 else "RLIMIT_NPROC not enforced (running as root)")
    else:
        items.append("no rlimits on this platform")
    return items


def _limit(limits: Limits):
    def apply() -> None:
        os.setsid()
        if resource is None:
            return
        for which, value in ((resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_AS, limits.memory_bytes),
                             (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_CORE, 0)):
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass
        if os.geteuid() != 0:
            try:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            except (ValueError, OSError):
                pass
    return apply


def _tail(path: Path, size: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def minimal_env(extra: dict | None = None) -> dict:
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "CUDA_VISIBLE_DEVICES", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    env.update(extra or {})
    return env


def run_limited(args: list[str], cwd: Path, limits: Limits, env: dict | None = None) -> RunResult:
    """Runs ``args`` in ``cwd`` under ``limits``; never raises for the child's failures."""
    out, err = cwd / ".stdout", cwd / ".stderr"
    start = time.perf_counter()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(args, cwd=cwd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                env=env if env is not None else minimal_env(), preexec_fn=_limit(limits))
        timed_out = False
        try:
            proc.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:  # the whole group: children left running in the background go too
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    return RunResult(None if timed_out else proc.returncode, timed_out, time.perf_counter() - start,
                     _tail(out), _tail(err))


def python_command(script: Path, *args: str) -> list[str]:
    return [sys.executable, "-I", str(script), *args]
