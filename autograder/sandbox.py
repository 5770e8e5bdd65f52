"""Running untrusted code: a bubblewrap sandbox that starts from nothing and binds in only what Python needs.

What a sandboxed process sees (``run_sandboxed``; ``allow_list`` names every path):
- read-only: ``/usr`` and the top-level links into it (``/bin``, ``/lib``, ...), ``/etc/ld.so.cache``, the grader's
  Python (its prefix, its virtual environment, and ``course_lib`` where that is installed from a checkout), with the
  grader's own package covered when it is installed there; where an assignment declares which packages its code may
  use (``Isolation.kept_modules``, an allow-list), only those and what they require (``paths_outside``): no import
  of anything else succeeds, however the name is computed;
- a fresh ``/proc`` (its own processes only) and a minimal ``/dev`` (null, zero, random, urandom, tty; the GPU's
  device files only when predictions run on CUDA);
- writable, and only in memory: its working directory ``/sandbox``, ``/tmp`` and ``/dev/shm`` (tmpfs with sizes that
  add up to ``Limits.disk_bytes``); they vanish with the sandbox;
- its inputs as sealed in-memory files (``memfd``, read-only: ``/proc/self/fd/N``) that the grader wrote, its
  stderr and its observations through pipes the grader opened before anything ran. No path the student's code
  could have touched is ever opened by the grader.
Not there: the course folder, other submissions, the gradebook, home folders, the checkout, the graded data's files,
host sockets, the network (own network namespace: no interface but a down loopback), other sandboxes (own PID, IPC
and UTS namespaces; ``/tmp`` and ``/dev/shm`` are private).

Limits that hold as root too: the wall clock (the sandbox is killed as a whole), ``RLIMIT_CPU``, ``RLIMIT_AS``,
``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, ``RLIMIT_NPROC`` (grading as root, every worker runs its sandboxes as an
unprivileged uid of its own, ``JAIL_UID_BASE`` + slot, and the limit is what that uid already runs, usually
nothing, plus ``Limits.processes``; grading as another user, that user's processes plus ``Limits.processes``), the tmpfs sizes, no capabilities and no
further user namespaces (bubblewrap's ``--disable-userns``). The sandbox dies with the grader, even a grader killed
with SIGKILL (``PR_SET_PDEATHSIG`` on bubblewrap, ``--die-with-parent`` inside; the PID namespace takes every process
with it), and leaves nothing on disk. Not limited: memory the kernel holds outside the processes' address spaces
(in-memory files, pipe buffers), which only a cgroup could cap (README, "Known limits").

As root, bubblewrap sets up the mounts (it can read the interpreter wherever it lives, e.g. under ``/root``) and
then runs ``setpriv`` to the worker's uid and a second, unprivileged bubblewrap in a user namespace of that uid with
``--disable-userns``. As another user, one unprivileged bubblewrap does it all, where the kernel allows user
namespaces (a TA's laptop, a Slurm node). Where nothing can isolate (``isolation_problem()`` says why), the judge
refuses unless the TA passed ``--unsafe`` (``Isolation.unsafe``): then the code runs with the limits above but
without the sandbox, and every row says so.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.config import environment
from autograder.errors import GraderError

try:
    import resource
except ImportError:  # not on Windows
    resource = None
RLIM_INFINITY = resource.RLIM_INFINITY if resource is not None else -1  # "no limit" for a Limits field

JAIL_UID_BASE = 61000
SANDBOX_DIR = "/sandbox"  # the sandboxed process's working directory and HOME
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"  # PATH inside the sandbox (setpriv, the inner bubblewrap)


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use.

    Attributes:
        disk_bytes: everything it may write, in memory: half for ``/sandbox``, a quarter each for ``/tmp`` and
            ``/dev/shm``.
        output_bytes: the most its observations may weigh; more is refused as unreadable.
        stderr_bytes: the tail of its stderr kept for messages.
        processes: ``RLIMIT_NPROC``: processes and threads the sandbox may add to those its uid already runs (as
            root, one uid per worker: usually none), its own bubblewrap and Python included (2); the probes'
            PyTorch runs one thread. Small, so that a
            submission cannot fill the machine with spinning processes (round 4 forked 250, each in a session of its
            own, and starved the classmate judged beside it; ``pipeline`` also judges a run that timed out beside
            others again, alone).
    """

    wall_seconds: float = 300.0
    cpu_seconds: int = 600
    memory_bytes: int = 8 * 1024**3
    file_bytes: int = 512 * 1024**2
    processes: int = 16
    open_files: int = 64
    disk_bytes: int = 512 * 1024**2
    output_bytes: int = 256 * 1024**2
    stderr_bytes: int = 4000


@dataclass(frozen=True)
class Isolation:
    """How a run is confined.

    Attributes:
        uid: the unprivileged uid the code runs as when the grader runs as root (one per worker).
        unsafe: where no sandbox can run, run anyway with the limits alone (the TA's ``--unsafe``); the result says
            ``isolated=False`` and every row says so.
        gpu: bind the GPU's device files (a term that evaluates on CUDA).
        kept_modules: an allow-list (``Assignment.sandbox_modules``): of the environment's packages, the sandbox
            holds only these and what they require (``paths_outside``), so that no way of importing another (a
            computed name, ``importlib``, ``sys.modules``) finds it; ``None``: all of them.
    """

    uid: int = JAIL_UID_BASE
    unsafe: bool = False
    gpu: bool = False
    kept_modules: tuple[str, ...] | None = None


class SandboxUnavailable(GraderError):
    """No sandbox can run on this machine and ``--unsafe`` was not given; the message says why and what to do."""


@dataclass
class RunResult:
    """What came back from one run: through the grader's own pipes, never through a file."""

    returncode: int | None
    timed_out: bool
    seconds: float
    stderr_tail: str
    output: bytes
    output_overflow: bool  # it tried to send more than ``Limits.output_bytes``
    isolated: bool


# --- what the sandbox sees ---------------------------------------------------------------------------------------

def _python_roots() -> list[Path]:
    """The grader's Python: its prefixes (virtual environment and base interpreter, as given and resolved) and, when
    ``course_lib`` is installed from a checkout (editable), that package's folder alone."""
    roots = set()
    for prefix in {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}:
        roots |= {Path(os.path.abspath(prefix)), Path(prefix).resolve()}  # as given (without ".."), and resolved
    try:
        import course_lib

        roots.add(Path(course_lib.__file__).resolve().parent)
    except ImportError:
        pass
    roots = sorted(r for r in roots if r != Path("/"))
    return [r for r in roots if not any(r != o and r.is_relative_to(o) for o in roots)]


def _grader_package_masks(roots: list[Path]) -> list[Path]:
    """The grader's own package (hidden checks, reference solutions) where it lies inside a bound folder (installed
    into the environment rather than from the checkout): covered by an empty, unreadable tmpfs."""
    package = Path(__file__).resolve().parent
    return [package] if any(package.is_relative_to(r) for r in roots) else []


def _python() -> str:
    """This interpreter, by a path that exists in the sandbox (``sys.executable`` may hold ``..``)."""
    return os.path.abspath(sys.executable)


def _first_parts(dist) -> set[str]:
    """The first path component of every file ``dist`` installed, from its RECORD read as text (``dist.files``
    makes an object per file: seconds for torch's)."""
    record = dist.read_text("RECORD")
    if record is None:
        return {file.parts[0] for file in dist.files or () if ".." not in file.parts}
    parts = set()
    for line in record.splitlines():
        path = line.rsplit(",", 2)[0].strip('"')
        if path and not path.startswith(".."):
            parts.add(path.split("/", 1)[0])
    return parts


@functools.lru_cache(maxsize=8)
def paths_outside(kept: tuple[str, ...]) -> tuple[Path, ...]:
    """An allow-list of the environment (``Isolation.kept_modules``): every entry of every package folder a sandbox
    binds (the environment's ``site-packages``, the base interpreter's, the system's ``dist-packages``) but those
    the distributions of ``kept`` installed and those of the distributions they require (transitively, markers
    evaluated here, extras left out), and ``course_lib``'s checkout when it is installed from one. A package
    installed later (pycocotools, the COCO reference of an exercise, say) is absent unless something kept needs it.
    ``kept`` names distributions by their top-level module (``torch``, ``numpy``)."""
    import re
    import sysconfig
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    dists: dict[str, metadata.Distribution] = {}
    todo = list(kept)
    while todo:
        name = todo.pop()
        if norm(name) in dists:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        dists[norm(name)] = dist
        for line in dist.requires or ():
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    entries = {Path(dist.locate_file("")).resolve() / first
               for dist in dists.values() for first in _first_parts(dist)}
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    folders = {Path(place).resolve() for place in (*(sysconfig.get_paths()[kind] for kind in ("purelib", "platlib")),
                                                   base["purelib"], base["platlib"],
                                                   *glob.glob("/usr/lib/python3*/*-packages"),
                                                   *glob.glob("/usr/local/lib/python3*/*-packages"))}
    # the environment's, the base interpreter's and the system's package folders: each is bound (a prefix, /usr),
    # and code can put any of them on sys.path (round 6 imported scipy from the base interpreter's)
    absent = {Path(entry.path) for folder in folders if folder.is_dir() for entry in os.scandir(folder)
              if Path(entry.path) not in entries and entry.name != "__pycache__"}  # a cache: no source, no import
    prefixes = [Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix)]
    absent |= {root for root in _python_roots() if not any(root.resolve().is_relative_to(p) for p in prefixes)}
    return tuple(sorted(absent))


@functools.lru_cache(maxsize=8)
def allow_list(kept_modules: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """Every host path a sandbox sees, by kind (for the README, ``active_protections`` and the tests).

    ``kept_modules`` (``Isolation.kept_modules``): what ``paths_outside`` names is left out. A folder that holds
    such paths among others (``site-packages``) is ``hollowed``: an empty read-only folder in the sandbox into which
    every other entry is bound, one by one."""
    top = {"symlinks": [], "read_only": []}
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            top["symlinks"].append(f"/{name} -> {os.readlink(path)}")
        elif path.is_dir():
            top["read_only"].append(str(path))
    absent = set(paths_outside(tuple(sorted(kept_modules)))) if kept_modules is not None else set()
    roots = [r for r in _python_roots() if r not in absent]
    read_only = ["/usr", *top["read_only"], *(str(r) for r in roots if not r.is_relative_to("/usr"))]
    if Path("/etc/ld.so.cache").is_file():
        read_only.append("/etc/ld.so.cache")
    hollowed = sorted({str(p.parent) for p in absent if any(p.is_relative_to(r) for r in [*map(Path, read_only)])})
    return {"read_only": read_only, "symlinks": top["symlinks"],
            "covered": [str(p) for p in _grader_package_masks(roots)],
            "hollowed": hollowed, "absent": sorted(str(p) for p in absent),
            "private_tmpfs": [SANDBOX_DIR, "/tmp", "/dev/shm"], "fresh": ["/proc", "/dev"]}


def _hollow_args(folder: str, absent: set[str]) -> list[str]:
    """bubblewrap's arguments that replace ``folder`` by an empty one holding every entry of the host's but
    ``absent``: links recreated as links, the rest bound read-only; then the folder itself made read-only."""
    args = ["--perms", "0755", "--tmpfs", folder]
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.path in absent:
            continue
        if entry.is_symlink():
            args.extend(["--symlink", os.readlink(entry.path), entry.path])
        else:
            args.extend(["--ro-bind", entry.path, entry.path])
    return [*args, "--remount-ro", folder]


# What the driver and the CUDA runtime read in /sys besides the GPUs' own folders: the modules' state (initstate,
# version) and the CPU and NUMA topology. /proc/driver/nvidia needs no bind: every procfs shows the driver's entries.
GPU_READ_ONLY = ("sys/module/nvidia", "sys/module/nvidia_uvm", "sys/devices/system/cpu", "sys/devices/system/node")


def gpu_binds(root: Path = Path("/")) -> list[tuple[str, str, str]]:
    """bubblewrap's operations for a term that evaluates on CUDA (``Isolation.gpu``), as (option, source,
    destination): what the driver and the CUDA runtime read, and no more of ``/sys`` than that.

    The device files (``/dev/nvidia*``, ``/dev/nvidia-caps``), ``GPU_READ_ONLY`` read-only, and for each GPU the
    driver lists (``/proc/driver/nvidia/gpus/<PCI address>``) its own folder under ``/sys/devices`` with the
    ``/sys/bus/pci/devices/<PCI address>`` link to it. ``root``: where the host's tree is (``/``; a test's copy).
    Paths that do not exist are left out (``-try``).
    """
    binds = []
    dev = root / "dev"
    for device in sorted(dev.glob("nvidia*")) if dev.is_dir() else []:
        binds.append(("--dev-bind-try", str(device), "/" + str(device.relative_to(root))))
    binds += [("--ro-bind-try", str(root / rel), "/" + rel) for rel in GPU_READ_ONLY]
    gpus = root / "proc/driver/nvidia/gpus"
    for address in sorted(p.name for p in gpus.iterdir()) if gpus.is_dir() else []:
        link = root / "sys/bus/pci/devices" / address
        device = link.resolve()
        if link.exists() and device.is_relative_to(root / "sys/devices"):
            inside = "/" + str(device.relative_to(root))
            binds += [("--ro-bind-try", str(device), inside), ("--symlink", inside, "/" + str(link.relative_to(root)))]
    return binds


def library_folders(entries) -> list[str]:
    """The folders of ``LD_LIBRARY_PATH`` (``config.Environment.library_path``) the sandbox may bind: absolute,
    existing, not ``/``. A relative entry (``.``, ``lib``) names a folder relative to wherever a process runs; it is
    ignored (round 4: ``.`` became ``--ro-bind-try . .``)."""
    return [str(folder) for folder in entries
            if os.path.isabs(folder) and Path(folder).is_dir() and Path(folder).resolve() != Path("/")]


def _mount_args(limits: Limits, isolation: Isolation) -> list[str]:
    """bubblewrap's arguments for the file system: the allow-list, private tmpfs with sizes, /proc and /dev."""
    listed = allow_list(isolation.kept_modules)
    quarter = max(limits.disk_bytes // 4, 1 << 20)
    # The private /tmp first: what the allow-list binds below it (a course or an environment cloned under /tmp)
    # is mounted on top of it, not hidden by it.
    args, made = ["--size", str(quarter), "--perms", "1777", "--tmpfs", "/tmp"], {Path("/"), Path("/tmp")}

    def parents(path: Path) -> None:  # bubblewrap would make them 0700 as root: make them enterable
        for parent in reversed(path.parents):
            if parent not in made:
                made.add(parent)
                args.extend(["--perms", "0755", "--dir", str(parent)])

    for path in listed["read_only"]:
        parents(Path(path))
        args.extend(["--ro-bind", path, path])
        made.add(Path(path))
    for link in listed["symlinks"]:
        dest, target = link.split(" -> ")
        args.extend(["--symlink", target, dest])
    for path in listed["covered"]:
        args.extend(["--perms", "0000", "--tmpfs", path])
    for folder in listed["hollowed"]:
        args.extend(_hollow_args(folder, set(listed["absent"])))
    args.extend(["--proc", "/proc", "--dev", "/dev"])
    if isolation.gpu:
        for option, source, dest in gpu_binds():
            if dest.startswith("/sys/"):  # /dev and /proc are bubblewrap's own, with their folders
                parents(Path(dest))
            args.extend([option, source, dest])
        for folder in library_folders(environment().library_path):
            if not any(Path(folder).is_relative_to(p) for p in listed["read_only"]):
                parents(Path(folder))
                args.extend(["--ro-bind-try", folder, folder])
    for path, size in ((SANDBOX_DIR, 2 * quarter), ("/dev/shm", quarter)):
        args.extend(["--size", str(size), "--perms", "1777", "--tmpfs", path])
    return args


def _bwrap_command(argv: list[str], limits: Limits, isolation: Isolation, env: dict) -> list[str]:
    """``argv`` wrapped in the sandbox: as root, a privileged bubblewrap for the mounts, ``setpriv`` to the worker's
    uid, then an unprivileged bubblewrap (its own user namespace, no further ones); as another user, one unprivileged
    bubblewrap."""
    namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    session = ["--die-with-parent", "--new-session"]
    settings = ["--chdir", SANDBOX_DIR, "--clearenv", "--setenv", "PATH", SANDBOX_PATH,
                *(a for k, v in env.items() for a in ("--setenv", k, str(v)))]
    bwrap = shutil.which("bwrap") or "bwrap"
    if os.geteuid() == 0:
        uid = str(isolation.uid)
        return [bwrap, *namespaces, *session, *_mount_args(limits, isolation), *settings,
                "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--",
                "bwrap", "--unshare-user", "--disable-userns", "--die-with-parent", "--dev-bind", "/", "/", "--", *argv]
    return [bwrap, "--unshare-user", "--disable-userns", *namespaces, *session, *_mount_args(limits, isolation),
            *settings, *argv]


@functools.lru_cache(maxsize=1)
def isolation_problem() -> str | None:
    """Why no sandbox can run here (``None``: it can). Tried once per process with the real command."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux (bubblewrap); this is {sys.platform}"
    if not shutil.which("bwrap"):
        return "bubblewrap is not installed (apt-get install bubblewrap, or your distribution's package)"
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        return "setpriv (util-linux) is missing, which the sandbox needs to drop root"
    try:
        probe = subprocess.run(_bwrap_command([_python(), "-I", "-c", "import os; print(os.getuid())"],
                                              Limits(), Isolation(), {}),
                               capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bubblewrap could not start ({type(err).__name__}: {err})"
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        hint = "" if os.geteuid() == 0 else " (unprivileged user namespaces may be disabled: grade as root)"
        return f"bubblewrap failed here: {why}{hint}"
    return None


def jail_supported() -> bool:
    """Whether student code runs sandboxed on this machine."""
    return isolation_problem() is None


def active_protections() -> list[str]:
    """The protections in force on this machine, in words (the README's list and each run's report)."""
    items = ["own process group killed at the wall-clock limit", "RLIMIT_CPU, RLIMIT_AS (memory), RLIMIT_FSIZE",
             "inputs in sealed in-memory files; stderr and observations through the grader's pipes",
             "python -I, a minimal environment, checkpoints read with weights_only=True"]
    problem = isolation_problem()
    if problem is None:
        listed = allow_list()
        user = f"uid {JAIL_UID_BASE}+worker" if os.geteuid() == 0 else f"this user (uid {os.getuid()})"
        items += [f"bubblewrap sandbox as {user}: sees only {', '.join(listed['read_only'])} (read-only), "
                  f"a fresh /proc and minimal /dev, and private in-memory {', '.join(listed['private_tmpfs'])}",
                  "no network (own network namespace), own PID, IPC and UTS namespaces, no capabilities, "
                  "no further user namespaces",
                  "RLIMIT_NPROC" + (" (per worker uid: its processes + limit)" if os.geteuid() == 0
                                    else " (this user's processes + limit)"),
                  "dies with the grader (SIGKILL included), leaves nothing on disk"]
        if listed["covered"]:
            items.append(f"grader package covered: {', '.join(listed['covered'])}")
    else:
        items.append(f"NO SANDBOX on this machine ({problem}): grading refuses unless --unsafe is given")
    return items


# --- running -----------------------------------------------------------------------------------------------------

def sealed_file(data: bytes, name: str) -> int:
    """An in-memory file holding ``data`` that nobody can change any more (memfd with all seals), positioned at 0."""
    fd = os.memfd_create(name, os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
    return fd


def _user_tasks(uid: int) -> int:
    """Processes and threads of ``uid`` now (what ``RLIMIT_NPROC`` counts)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return count


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _preexec(limits: Limits, nproc: int | None):
    def apply() -> None:
        os.setsid()
        if _libc is not None:  # the sandbox dies with the thread that started it, even when the grader is SIGKILLed
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if resource is None:
            return
        limits_ = [(resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_AS, limits.memory_bytes),
                   (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_CORE, 0),
                   (resource.RLIMIT_NOFILE, limits.open_files)]
        if nproc is not None:
            limits_.append((resource.RLIMIT_NPROC, nproc))
        for which, value in limits_:
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass
    return apply


class _Drain(threading.Thread):
    """Reads a pipe to its end: keeps the first ``keep`` bytes (``tail=False``) or the last (``tail=True``), and
    drains the rest so the writer never blocks."""

    def __init__(self, fd: int, keep: int, tail: bool):
        super().__init__(daemon=True)
        self.fd, self.keep, self.tail = fd, keep, tail
        self.data, self.overflow = bytearray(), False

    def run(self) -> None:
        try:
            while chunk := os.read(self.fd, 1 << 20):
                if self.tail:
                    self.data += chunk
                    del self.data[:-self.keep]
                    continue
                room = max(self.keep - len(self.data), 0)
                self.overflow |= len(chunk) > room
                self.data += chunk[:room]
        finally:
            os.close(self.fd)


def run_sandboxed(script: str, files: dict[str, bytes], limits: Limits, isolation: Isolation,
                  env: dict | None = None) -> RunResult:
    """Runs ``python -I <script> <manifest>`` in the sandbox and returns what it wrote to its output pipe.

    ``files`` (``script`` among them) become sealed in-memory files the process inherits; the manifest (JSON, its one
    argument) maps each name to its path (``/proc/self/fd/N``) and gives ``out``, the descriptor of the output pipe.
    Never raises for the child's failures; raises ``SandboxUnavailable`` where no sandbox can run and
    ``isolation.unsafe`` is off.
    """
    problem = isolation_problem()
    if problem is not None and not isolation.unsafe:
        raise SandboxUnavailable(f"student code cannot be sandboxed on this machine: {problem}. Fix that, or grade "
                                 "with --unsafe on a machine that holds nothing else (every row will say so)")
    isolated = problem is None
    fds = {name: sealed_file(data, name) for name, data in files.items()}
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    paths = {name: f"/proc/self/fd/{fd}" for name, fd in fds.items()}
    argv = [_python(), "-I", paths[script], json.dumps({"files": paths, "out": out_write})]
    env = dict(env or {})
    scratch = None
    if isolated:
        env.update({"HOME": SANDBOX_DIR, "TMPDIR": "/tmp", "USER": "student"})
        argv = _bwrap_command(argv, limits, isolation, env)
        cwd = "/"
        # what the uid already runs plus the cap: the worker's uid may also be another grader's on this machine (two
        # TAs grading at once, the sessions of a shared test machine), whose sandboxes must not stop this one starting
        nproc = _user_tasks(isolation.uid if os.geteuid() == 0 else os.getuid()) + limits.processes
    else:  # --unsafe: the limits alone, in a scratch folder removed afterwards
        scratch = tempfile.mkdtemp(prefix="unsafe-judge-")
        env.update({"HOME": scratch, "TMPDIR": scratch, "PATH": SANDBOX_PATH})
        cwd = scratch
        nproc = None if os.geteuid() == 0 else _user_tasks(os.getuid()) + limits.processes
    out = _Drain(out_read, limits.output_bytes, tail=False)
    err = _Drain(err_read, limits.stderr_bytes, tail=True)
    start = time.perf_counter()
    try:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env if not isolated else {"PATH": SANDBOX_PATH},
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_write,
                                    pass_fds=[*fds.values(), out_write], preexec_fn=_preexec(limits, nproc))
        finally:
            for fd in (*fds.values(), out_write, err_write):
                os.close(fd)
        out.start()
        err.start()
        timed_out = False
        try:
            proc.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:  # the whole group; in the sandbox, its PID namespace ends with bubblewrap
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        out.join(timeout=30)
        err.join(timeout=30)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return RunResult(None if timed_out else proc.returncode, timed_out, time.perf_counter() - start,
                     bytes(err.data).decode(errors="replace"), bytes(out.data), out.overflow, isolated)


def minimal_env(extra: dict | None = None) -> dict:
    keep = ("LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    if library_folders(environment().library_path):
        env["LD_LIBRARY_PATH"] = os.pathsep.join(library_folders(environment().library_path))
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    env.update(extra or {})
    return env
