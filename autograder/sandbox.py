"""Running untrusted code in a child process with limits, and, where the machine allows it, in a jail.

Always:
- a separate process and process group, killed as a whole at the wall-clock limit;
- ``RLIMIT_CPU`` (CPU seconds), ``RLIMIT_AS`` (address space), ``RLIMIT_FSIZE`` (largest file), ``RLIMIT_CORE`` 0;
- a scratch directory with copies of only what is needed (random name, in a parent no one else can list),
  a minimal environment, ``python -I``; stdout discarded, stderr to a file of which only the tail is read back.
The jail (Linux, grading as root, ``unshare`` and ``setpriv`` present; ``jail_supported()`` tells):
- new network namespace: no network at all (a private loopback only where nbgrader needs one for its kernel);
- new PID namespace: every process the student starts, background ones too, dies with the jail;
- new mount namespace: the grader's files (hidden checks, reference solutions, sources, gradebook, other
  submissions) are covered by empty tmpfs mounts;
- an unprivileged uid per worker (so ``RLIMIT_NPROC`` applies and one student's fork bomb cannot starve another),
  no capabilities, no supplementary groups.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from autograder.config import environment

try:
    import resource
except ImportError:  # not on Windows
    resource = None
RLIM_INFINITY = resource.RLIM_INFINITY if resource is not None else -1  # "no limit" for a Limits field


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
    stderr_tail: str


REPO = Path(__file__).resolve().parents[1]
SCRATCH_ROOT = environment().scratch
JAIL_UID_BASE = 61000


@dataclass(frozen=True)
class Jail:
    """What a jailed process may not see: directories covered by tmpfs, files covered by /dev/null."""

    uid: int = JAIL_UID_BASE
    hide_dirs: tuple[Path, ...] = ()
    hide_files: tuple[Path, ...] = ()
    loopback: bool = False


@functools.lru_cache(maxsize=1)
def jail_supported() -> bool:
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return False
    probe = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "true"],
                           capture_output=True)
    return probe.returncode == 0


def active_protections() -> list[str]:
    """The protections in force on this machine, in words (the README's list and each run's report)."""
    items = ["own process group killed at the wall-clock limit", "scratch directory, minimal environment, python -I",
             "checkpoints read with weights_only=True"]
    if resource is not None:
        items += ["RLIMIT_CPU", "RLIMIT_AS (memory)", "RLIMIT_FSIZE (file size)"]
    if jail_supported():
        items += ["network namespace (no network)", "PID namespace (background processes die with the jail)",
                  "mount namespace hiding grader files, gradebook and other submissions",
                  f"unprivileged uid per worker ({JAIL_UID_BASE}+), RLIMIT_NPROC, no capabilities"]
    else:
        items.append("no jail on this machine (needs Linux, root, unshare and setpriv): student code runs as "
                     f"uid {os.getuid()} and can read what that user can read")
    return items


def scratch_dir(prefix: str) -> Path:
    """A fresh directory with a random name under SCRATCH_ROOT (mode 0711: no one can list the others)."""
    SCRATCH_ROOT.mkdir(parents=True, exist_ok=True)
    os.chmod(SCRATCH_ROOT, 0o711)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=SCRATCH_ROOT))


def grader_secrets(course_root: Path, db_url: str | None = None,
                   also_hide: tuple[Path, ...] = ()) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """Directories and files of the grader that a jailed process must not see: the grader's, the course's, and
    ``also_hide`` (the graded data's files and folders, ``autograder.heldout.GradingData.hidden_paths``)."""
    dirs = [REPO / name for name in ("autograder", "source", "tests", "bench", ".git", "demo_out", "grading",
                                     "submitted", "autograded", "feedback", "downloaded")]
    course_root = Path(course_root).resolve()
    venv = Path(sys.prefix).resolve()
    if course_root != REPO and not str(venv).startswith(str(course_root)):
        dirs.append(course_root)
    else:
        dirs += [course_root / n for n in ("source", "submitted", "autograded", "feedback", "grading", "downloaded")]
    dirs += [Path(p) for p in also_hide]
    files = [REPO / "gradebook.db", course_root / "gradebook.db", *(Path(p) for p in also_hide)]
    if db_url and db_url.startswith("sqlite:///"):
        files.append(Path(db_url.removeprefix("sqlite:///")))
    keep = lambda p: p.exists() and not str(SCRATCH_ROOT.resolve()).startswith(str(p.resolve()))
    candidates = sorted({p.resolve() for p in dirs if keep(p) and p.is_dir()})
    # a directory inside another hidden one is covered already (and its mount point vanishes with the parent)
    hidden = [p for p in candidates if not any(p != d and p.is_relative_to(d) for d in candidates)]
    inside = lambda p: any(p.resolve().is_relative_to(d) for d in hidden)
    return tuple(hidden), tuple(sorted({p for p in files if keep(p) and p.is_file() and not inside(p)}))


def _expose_interpreter() -> list[str]:
    """Shell lines that let an unprivileged uid reach the interpreter when an ancestor (e.g. /root) is closed:
    a world-readable tmpfs goes over the closed ancestor and only the path to the interpreter is moved back in."""
    lines = []
    prefix = Path(sys.base_prefix).resolve()
    parts = prefix.parts
    for depth in range(1, len(parts)):
        ancestor, child = Path(*parts[:depth]), Path(*parts[:depth + 1])
        if ancestor != Path("/") and not os.stat(ancestor).st_mode & 0o001:
            keep = f"/tmp/.jail-keep-{uuid.uuid4().hex}"
            lines += [f"mkdir -p {keep}", f"mount --bind {shlex.quote(str(child))} {keep}",
                      f"mount -t tmpfs -o mode=0755,size=64k none {shlex.quote(str(ancestor))}",
                      f"mkdir -p {shlex.quote(str(child))}", f"mount --move {keep} {shlex.quote(str(child))}"]
            break
    return lines


def jail_reachability_problems(paths: list[Path] | None = None) -> list[str]:
    """What the jail's unprivileged uid cannot reach: for the Python environment (a virtual environment's prefix)
    and the installed ``course_lib``, the first directory on the way that others may not enter. The base
    interpreter's own closed ancestor is handled by ``_expose_interpreter``.

    Returns:
        One sentence per unreachable path (empty when the jail can run the grader's interpreter and library).
    """
    import course_lib

    if paths is None:
        paths = [Path(course_lib.__file__).resolve().parent]
        if Path(sys.prefix).resolve() != Path(sys.base_prefix).resolve():
            paths.insert(0, Path(sys.prefix).resolve())
    problems = []
    for path in paths:
        for depth in range(2, len(path.parts) + 1):
            ancestor = Path(*path.parts[:depth])
            mode = os.stat(ancestor).st_mode
            if not mode & 0o001:
                problems.append(f"{path} lies under {ancestor} (mode {mode & 0o777:o}), which the "
                                f"grading jail's uid ({JAIL_UID_BASE}+) cannot enter")
                break
    return problems


def jail_command(args: list[str], jail: Jail) -> list[str]:
    """``args`` wrapped in the jail (or unchanged where the machine has none)."""
    if not jail_supported():
        return args
    lines = ["set -e", "trap 'exit 97' EXIT"]  # a failed set-up step is the grader's problem: exit 97
    if jail.loopback:
        lines.append("ip link set lo up")
    lines += _expose_interpreter()
    # a path that is gone once the interpreter's closed ancestor is covered (e.g. /root/.cache) is out of reach already
    lines += [f"if [ -d {q} ]; then mount -t tmpfs -o size=64k,mode=000 none {q}; fi"
              for q in (shlex.quote(str(d)) for d in jail.hide_dirs)]
    lines += [f"if [ -e {q} ]; then mount --bind /dev/null {q}; fi" for q in (shlex.quote(str(f)) for f in jail.hide_files)]
    lines.append("trap - EXIT")
    lines.append(f'exec setpriv --reuid={jail.uid} --regid={jail.uid} --clear-groups --inh-caps=-all '
                 f'--bounding-set=-all "$@"')
    return ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
            "sh", "-c", "\n".join(lines), "jail", *args]


JAIL_SETUP_FAILED = 97


def hand_over(folder: Path, uid: int) -> None:
    """Gives a scratch directory to the jail's uid (when jailed) so the student's process can write there."""
    if not jail_supported():
        return
    for root, dirs, files in os.walk(folder):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)


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
    keep = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    env.update(extra or {})
    return env


def run_limited(args: list[str], cwd: Path, limits: Limits, env: dict | None = None,
                jail: Jail | None = None) -> RunResult:
    """Runs ``args`` in ``cwd`` under ``limits`` (and in ``jail`` where supported); never raises for the child's
    failures."""
    err = cwd / ".stderr"
    if jail is not None:
        hand_over(cwd, jail.uid)
        args = jail_command(args, jail)
    start = time.perf_counter()
    with open(err, "wb") as fe:
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=fe, stdin=subprocess.DEVNULL,
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
    return RunResult(None if timed_out else proc.returncode, timed_out, time.perf_counter() - start, _tail(err))


def python_command(script: Path, *args: str) -> list[str]:
    return [sys.executable, "-I", str(script), *args]
