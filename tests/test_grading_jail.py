"""The sandbox as a student's code sees it: an allow-list, limits that hold as root, nothing left behind, the same
sandbox without root, and the grader never opening by path what the student touched (fast: trivial scripts only;
the grading of crafted submissions is ``test_adversarial.py``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import torch

from autograder.checks import get_assignment
from autograder.judge import irregular_files, load_tensors, read_submitted
from autograder.sandbox import (
    JAIL_UID_BASE, SANDBOX_DIR, Isolation, Limits, SandboxUnavailable, active_protections, allow_list,
    isolation_problem, minimal_env, run_sandboxed,
)

REPO = Path(__file__).resolve().parents[1]
needs_sandbox = pytest.mark.skipif(isolation_problem() is not None, reason=f"no sandbox here: {isolation_problem()}")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")


def sandboxed(script: str, limits: Limits = Limits(wall_seconds=60), uid: int = JAIL_UID_BASE + 7,
              files: dict[str, bytes] | None = None):
    """Runs ``script`` in the sandbox; it gets ``send(obj)`` to answer through the grader's pipe as JSON."""
    head = ("import json, os, sys\nMANIFEST = json.loads(sys.argv[1])\n"
            "def send(obj):\n    os.write(MANIFEST['out'], json.dumps(obj).encode())\n")
    run = run_sandboxed("probe.py", {"probe.py": (head + textwrap.dedent(script)).encode(), **(files or {})},
                        limits, Isolation(uid=uid), minimal_env())
    try:
        return run, json.loads(run.output)
    except ValueError:
        return run, None


@pytest.fixture
def course_elsewhere(tmp_path):
    """A course folder in the README's layout (its roster, a classmate's submission, the term's secret) placed
    outside the checkout: under /srv where this machine lets us, else under the temporary folder."""
    parent = Path(tempfile.mkdtemp(dir="/srv" if os.access("/srv", os.W_OK) else None))
    course = parent / "course"
    (course / "submitted" / "bea" / "segmentation_hw").mkdir(parents=True)
    (course / "submitted" / "bea" / "segmentation_hw" / "segmentation_hw_checkpoint.pt").write_bytes(b"weights")
    (course / "grading").mkdir()
    (course / "grading" / "term_secret.txt").write_text("the-secret\n")
    (course / "canvas_gradebook.csv").write_text("Student,ID\nBea,123\n")
    os.chmod(parent, 0o755)
    yield course
    shutil.rmtree(parent, ignore_errors=True)


@needs_sandbox
def test_a_sandboxed_process_sees_only_the_allow_list(course_elsewhere):
    server = socket.socket(socket.AF_UNIX)
    host_socket = Path(tempfile.gettempdir()) / f"host-db-{os.getpid()}.sock"
    server.bind(str(host_socket))
    server.listen(1)
    listener = socket.create_server(("127.0.0.1", 0))
    paths = [str(course_elsewhere), str(REPO / "autograder"), str(REPO / "source"), str(REPO / ".git"), "/home",
             str(course_elsewhere / "grading" / "term_secret.txt"), str(host_socket), "/var", "/etc/passwd",
             str(Path.home() / ".ssh"), str(Path.home() / ".cache")]
    try:
        run, seen = sandboxed(f"""
            import socket, subprocess
            reachable = [p for p in {paths!r} if os.path.exists(p)]
            try:
                socket.create_connection(("127.0.0.1", {listener.getsockname()[1]}), timeout=2)
                net = "connected"
            except OSError as err:
                net = type(err).__name__
            nested = subprocess.run(["unshare", "-U", "-r", "true"], capture_output=True).returncode
            send({{"root": sorted(os.listdir("/")), "reachable": reachable, "net": net, "uid": os.getuid(),
                   "cwd": os.getcwd(), "tmp": os.listdir("/tmp"), "shm": os.listdir("/dev/shm"),
                   "processes": [p for p in os.listdir("/proc") if p.isdigit()], "nested_userns": nested,
                   "checkout": sorted(os.listdir({str(REPO)!r})) if os.path.isdir({str(REPO)!r}) else []}})
        """)
    finally:
        server.close()
        listener.close()
        host_socket.unlink(missing_ok=True)
    assert run.isolated and seen is not None, run.stderr_tail
    assert seen["reachable"] == []
    assert seen["net"] != "connected"
    assert seen["nested_userns"] != 0
    assert seen["cwd"] == SANDBOX_DIR and seen["tmp"] == bound_under_tmp() and seen["shm"] == []
    assert len(seen["processes"]) <= 4  # bubblewrap's init, (as root) the inner bubblewrap, python, the probe's child
    visible = {Path(p).parts[1] for p in allow_list()["read_only"]} | {"bin", "sbin", "lib", "lib64", "lib32",
                                                                       "libx32", "proc", "dev", "tmp", "sandbox"}
    assert set(seen["root"]) <= visible, set(seen["root"]) - visible
    bound_here = {Path(p).relative_to(REPO).parts[0] for p in allow_list()["read_only"] if Path(p).is_relative_to(REPO)}
    assert set(seen["checkout"]) == bound_here  # of the checkout, only the environment and course_lib
    if os.geteuid() == 0:
        assert seen["uid"] == JAIL_UID_BASE + 7


@needs_sandbox
@needs_root
def test_process_and_disk_limits_hold_as_root():
    limits = Limits(wall_seconds=60, processes=40, disk_bytes=64 * 1024**2)
    run, seen = sandboxed("""
        import time
        forked = 0
        for _ in range(200):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(5)
                os._exit(0)
            forked += 1
        written = {}
        for folder in ("/sandbox", "/tmp", "/dev/shm"):
            size = 0
            try:
                with open(f"{folder}/fill", "wb") as f:
                    for _ in range(200):
                        f.write(b"x" * 1024**2)
                        size += 1
            except OSError as err:
                written[folder] = [size, err.errno]
        send({"forked": forked, "written": written})
    """, limits)
    assert seen is not None, run.stderr_tail
    assert seen["forked"] < 40
    assert {folder: errno for folder, (_, errno) in seen["written"].items()} == {
        "/sandbox": 28, "/tmp": 28, "/dev/shm": 28}  # ENOSPC: each tmpfs is full at its size
    assert sum(size for size, _ in seen["written"].values()) <= 64


@needs_sandbox
def test_stderr_and_observations_come_back_capped_through_pipes():
    run, _ = sandboxed("""
        os.write(MANIFEST["out"], b"x" * 5000)
        sys.stderr.write("e" * 100000 + "LAST LINE")
    """, Limits(wall_seconds=60, output_bytes=1000, stderr_bytes=200))
    assert run.output == b"x" * 1000 and run.output_overflow
    assert run.stderr_tail.endswith("LAST LINE") and len(run.stderr_tail) == 200


GRADER = """
import sys
sys.path.insert(0, {repo!r})
from autograder.sandbox import run_sandboxed, Limits, Isolation, minimal_env
script = b'''
import os, subprocess, time
subprocess.Popen(["sleep", "987"], start_new_session=True)
open("/sandbox/left", "w").write("x")
open("/tmp/left", "w").write("x")
time.sleep(600)
'''
run_sandboxed("s.py", {{"s.py": script}}, Limits(wall_seconds=600), Isolation(uid={uid}), minimal_env())
"""


def _sandbox_processes(uid: int | None) -> list[str]:
    """Processes of the sandbox's uid (as root) or running the test's sleeper (otherwise)."""
    query = ["pgrep", "-u", str(uid)] if uid is not None else ["pgrep", "-f", "sleep 987"]
    return subprocess.run(query, capture_output=True, text=True).stdout.split()


@needs_sandbox
def test_a_killed_grader_leaves_no_process_and_nothing_on_disk():
    uid = JAIL_UID_BASE + 777 if os.geteuid() == 0 else None
    temp = Path(tempfile.gettempdir())
    before = set(temp.iterdir())
    grader = subprocess.Popen([sys.executable, "-c", GRADER.format(repo=str(REPO), uid=uid or 0)])
    try:
        deadline = time.monotonic() + 60
        while len(_sandbox_processes(uid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_sandbox_processes(uid)) >= 2, "the sandbox never started"
    finally:
        grader.send_signal(signal.SIGKILL)
        grader.wait()
    deadline = time.monotonic() + 10
    while _sandbox_processes(uid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sandbox_processes(uid) == []
    new = [p for p in set(temp.iterdir()) - before if p.name.startswith((".jail-keep", "unsafe-judge", "judge-"))
           or (uid is not None and p.lstat().st_uid == uid)]
    assert new == []


@needs_root
def test_the_same_sandbox_runs_without_root_where_the_kernel_allows(tmp_path):
    """A TA's own account: the system's Python (reachable by anyone) imports the sandbox from this checkout and runs
    it as an unprivileged user; bubblewrap then needs unprivileged user namespaces."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 for an unprivileged user")
    probe = ("import json, os, sys\nm = json.loads(sys.argv[1])\nos.write(m['out'], json.dumps([os.getuid(), "
             f"os.path.exists({str(REPO / 'autograder')!r}), os.listdir('/tmp')]).encode())\n")
    script = textwrap.dedent(f"""
        import json, os, sys
        from autograder.sandbox import run_sandboxed, Limits, Isolation, isolation_problem, minimal_env
        problem = isolation_problem()
        if problem:
            print(json.dumps({{"problem": problem}}))
            sys.exit(0)
        run = run_sandboxed("p.py", {{"p.py": {probe.encode()!r}}}, Limits(wall_seconds=60), Isolation(), minimal_env())
        print(json.dumps({{"isolated": run.isolated, "seen": json.loads(run.output), "err": run.stderr_tail}}))
    """)
    out = subprocess.run(["setpriv", "--reuid=61500", "--regid=61500", "--clear-groups", python, "-c", script],
                         capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    if "problem" in answer:
        pytest.skip(f"this kernel gives an unprivileged user no sandbox: {answer['problem']}")
    assert answer["isolated"] and answer["seen"] == [61500, False, bound_under_tmp()], answer


def test_without_a_sandbox_grading_refuses_unless_unsafe(monkeypatch, tmp_path):
    from autograder import pipeline, sandbox
    from autograder.course import Course
    from autograder.errors import GraderError

    monkeypatch.setattr(sandbox, "isolation_problem", lambda: "bubblewrap is not installed")
    monkeypatch.setattr(pipeline, "isolation_problem", lambda: "bubblewrap is not installed")
    with pytest.raises(SandboxUnavailable, match="--unsafe"):
        run_sandboxed("p.py", {"p.py": b""}, Limits(), Isolation(), minimal_env())
    with pytest.raises(GraderError, match="--unsafe"):
        pipeline.grade(Course(tmp_path), "segmentation_concepts", opts=pipeline.GradeOptions(), log=lambda *a: None)
    run = run_sandboxed("p.py", {"p.py": b"import json, os, sys\nos.write(json.loads(sys.argv[1])['out'], b'ran')"},
                        Limits(wall_seconds=60), Isolation(unsafe=True), minimal_env())
    assert run.output == b"ran" and not run.isolated
    assert any("NO SANDBOX" in item for item in sandbox.active_protections())


def test_active_protections_name_the_sandbox_and_its_allow_list():
    said = " ".join(active_protections())
    if isolation_problem() is None:
        assert "bubblewrap" in said and all(path in said for path in allow_list()["read_only"])
        assert "/sandbox" in said and "no network" in said
    else:
        assert "NO SANDBOX" in said


# --- what the grader reads of a submission ----------------------------------------------------------------------

def test_only_regular_files_are_read_and_links_are_never_followed(tmp_path):
    secret = tmp_path / "term_secret.txt"
    secret.write_text("the-secret")
    folder = tmp_path / "submitted" / "mallory" / "segmentation_hw"
    folder.mkdir(parents=True)
    (folder / "segmentation_hw.ipynb").write_text("{}")
    (folder / "segmentation_hw_checkpoint.pt").symlink_to(secret)
    os.mkfifo(folder / "segmentation_hw_results.json")
    found = read_submitted(folder, get_assignment("segmentation_hw"))
    assert found.files == {"segmentation_hw.ipynb": b"{}"}
    assert "symbolic link" in found.refused["segmentation_hw_checkpoint.pt"]
    assert "not a regular file" in found.refused["segmentation_hw_results.json"]
    assert irregular_files(folder) == [Path("segmentation_hw_checkpoint.pt"), Path("segmentation_hw_results.json")]
    linked = tmp_path / "linked"
    linked.symlink_to(folder)
    assert read_submitted(linked, get_assignment("segmentation_hw")).files == {}


def test_tensors_from_a_submission_are_loaded_only_from_a_plain_torch_file(tmp_path):
    path = tmp_path / "t.pt"
    torch.save({"w": torch.ones(3)}, path)
    assert torch.equal(load_tensors(path.read_bytes())["w"], torch.ones(3))
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", b"\0" * 10_000_000)
    with pytest.raises(ValueError, match="compressed"):
        load_tensors(bomb.read_bytes())
    with pytest.raises(ValueError, match="not a torch.save file"):
        load_tensors(b"not a zip")
    torch.save({"w": torch.zeros(1).expand(10**9)}, path)  # a billion elements viewing one float
    with pytest.raises(ValueError, match="more memory than the file holds"):
        load_tensors(path.read_bytes())


# --- the runner: each graded cell sees its own names and those of the cells above it ------------------------------

def _runner():
    import importlib.util

    loader = importlib.util.spec_from_file_location("sandbox_runner_under_test", REPO / "autograder" / "sandbox_runner.py")
    runner = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(runner)
    return runner


def test_each_cell_runs_on_the_names_above_it_and_a_later_helper_never_replaces_its_own():
    cells = {"first": "def _helper():\n    return 'first'\ndef use_first():\n    return _helper()\n",
             "second": "def _helper():\n    return 'second'\ndef use_second():\n    return _helper(), use_first()\n",
             "broken": "late = 1\nraise SystemExit('a cell that ends the process')\n"}
    errors = {}
    merged, spaces = _runner().run_cells(cells, errors)
    assert spaces["first"]["use_first"]() == "first"  # the second cell's _helper came later
    assert spaces["second"]["use_second"]() == ("second", "first")
    assert "use_second" not in spaces["first"] and "F" in spaces["first"]  # nothing from below; the preamble's names
    assert spaces["broken"]["late"] == 1 and errors == {"broken": "SystemExit: a cell that ends the process"}
    assert merged["_helper"]() == "second" and merged["late"] == 1  # every name bound, later cells win


def test_a_later_cells_helper_of_the_same_name_costs_the_homework_nothing():
    """The residual block calls its cell's top-level ``_join``; the model's cell defines another ``_join`` after it.
    In one shared namespace the block would call the model cell's helper and lose its points."""
    import nbformat

    from autograder.judge import Submitted, judge_files
    from inprocess import run_in_process
    from test_forgery import _grading_data

    reference = (REPO / "autograder" / "reference" / "segmentation_hw.py").read_text()
    block = reference.split("# BEGIN ResidualBlock\n")[1].split("# END ResidualBlock")[0]
    model = reference.split("# BEGIN SegmentationModel\n")[1].split("# END SegmentationModel")[0]
    assert "return F.relu(out + self.shortcut(x))" in block
    block = ("def _join(out, shortcut):\n    return F.relu(out + shortcut)\n\n\n"
             + block.replace("return F.relu(out + self.shortcut(x))", "return _join(out, self.shortcut(x))"))
    model = "def _join(*names):\n    return '-'.join(map(str, names))\n\n\n" + model
    nb = nbformat.read(REPO / "release" / "segmentation_hw" / "segmentation_hw.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell.source = {"residual_block": block, "segmentation_model": model}.get(gid, cell.source)
    submitted = Submitted(files={"segmentation_hw.ipynb": nbformat.writes(nb).encode()})
    verdict = judge_files(submitted, "segmentation_hw", _grading_data(8), run=run_in_process)
    for gid in ("test_residual_block", "test_segmentation_model"):
        assert verdict.checks[gid].passed, verdict.checks[gid].message


def test_the_readmes_table_of_limits_is_the_declared_one():
    """Every limit is declared once, where it is enforced; the README shows ``judge.limits_markdown()`` verbatim."""
    from autograder.judge import limits_markdown

    assert limits_markdown() in (REPO / "README.md").read_text(), "paste judge.limits_markdown() into the README"


# --- round 4: a classmate's processes cannot cost an honest student the run ----------------------------------------

@needs_sandbox
@needs_root
def test_the_default_process_cap_stops_a_hog_and_leaves_pytorch_its_threads():
    """Round 4 forked 250 spinning processes, each in a session of its own. Under the declared cap the sandbox's uid
    holds at most ``Limits.processes`` tasks (its bubblewrap and Python included), and PyTorch still gets threads."""
    limits = Limits(wall_seconds=60)
    run, seen = sandboxed("""
        import threading, time, torch
        torch.set_num_threads(4)
        torch.nn.Conv2d(3, 8, 3)(torch.randn(8, 3, 64, 64)).sum().item()
        forked = 0
        for _ in range(64):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                os.setsid()
                time.sleep(3)
                os._exit(0)
            forked += 1
        send({"forked": forked, "threads": torch.get_num_threads()})
    """, limits)
    assert seen is not None, run.stderr_tail
    assert 4 <= seen["forked"] <= limits.processes - 2 and seen["threads"] == 4


@needs_sandbox
@needs_root
def test_another_graders_processes_of_the_same_uid_do_not_stop_a_sandbox():
    """Two graders on one machine give their first workers the same uid; the cap counts what the uid already runs,
    so the second grader's sandbox still starts (this machine's shared sessions hit exactly that)."""
    uid = JAIL_UID_BASE + 8
    others = [subprocess.Popen(["sleep", "60"], user=uid, group=uid) for _ in range(Limits().processes)]
    try:
        run, seen = sandboxed("send({'uid': os.getuid()})", Limits(wall_seconds=60), uid=uid)
    finally:
        for other in others:
            other.kill()
            other.wait()
    assert seen == {"uid": uid}, run.stderr_tail


def test_a_run_that_timed_out_beside_a_hog_is_judged_again_alone(tmp_path, monkeypatch):
    """The grading pool judges a student whose run hit the wall-clock limit while others ran once more, alone, after
    everyone else: the honest classmate starved by the hog gets their verdict; the hog, slow on its own, times out
    again. (The judge is a stand-in that times out exactly as a starved run does, so the test needs no hog.)"""
    import threading
    from types import SimpleNamespace

    from autograder import pipeline
    from autograder.judge import Verdict

    side_by_side = threading.Barrier(2)
    lock, running, calls, seen = threading.Lock(), set(), [], []

    def judge(folder, assignment, data, limits, isolation):
        student = Path(folder).parent.name
        with lock:
            running.add(student)
            calls.append(student)
            first_round = len(calls) <= 2
        if first_round:  # the hog and the classmate start together, and neither ends before both have started
            side_by_side.wait(timeout=30)
        with lock:
            starved = student == "hog" or "hog" in running
            seen.append((student, sorted(running)))
        if first_round:
            side_by_side.wait(timeout=30)
        with lock:
            running.discard(student)
        verdict = Verdict(assignment.name)
        verdict.sandbox = {"timed_out": starved}
        return verdict

    monkeypatch.setattr(pipeline, "judge_submission", judge)
    spec, course, logged = get_assignment("segmentation_hw"), SimpleNamespace(root=tmp_path), []
    outcomes = list(pipeline._outcomes(pipeline._local_outcomes, course, spec, ["hog", "honest"],
                                       pipeline.GradeOptions(workers=2), None, logged.append))
    final = {judged.student: judged.verdict.sandbox for judged in outcomes}
    assert final == {"hog": {"timed_out": True, "judged_again_alone": True},
                     "honest": {"timed_out": False, "judged_again_alone": True}}
    assert sorted(seen[:2]) == [("hog", ["hog", "honest"]), ("honest", ["hog", "honest"])]
    assert sorted(seen[2:]) == [("hog", ["hog"]), ("honest", ["honest"])]  # each alone the second time
    assert len(logged) == 2 and all("judging it again, alone" in line for line in logged)
    calls.clear()
    alone = list(pipeline._outcomes(pipeline._local_outcomes, course, spec, ["hog"], pipeline.GradeOptions(workers=2),
                                    None, logged.append))
    assert len(alone) == 1 and len(calls) == 1  # a run that was alone to begin with is not judged again


# --- round 4: a CUDA term binds what CUDA reads, not the host's /sys -------------------------------------------------

def test_a_cuda_term_binds_the_gpus_files_and_no_more_of_sys(tmp_path, monkeypatch):
    """No GPU here: the arguments are checked on a copy of the host's tree (device files, the driver's list of GPUs,
    sysfs with the GPU's PCI folder and another device's). Round 4's CUDA term bound the whole /sys and turned a
    relative LD_LIBRARY_PATH entry into ``--ro-bind-try . .``."""
    from autograder import sandbox

    root = tmp_path / "host"
    for device in ("nvidia0", "nvidiactl", "nvidia-uvm", "null"):
        (root / "dev").mkdir(parents=True, exist_ok=True)
        (root / "dev" / device).write_text("")
    (root / "dev" / "nvidia-caps").mkdir()
    (root / "proc/driver/nvidia/gpus/0000:3b:00.0").mkdir(parents=True)
    for device in ("pci0000:3a/0000:3a:00.0/0000:3b:00.0", "pci0000:00/0000:00:1f.0"):
        (root / "sys/devices" / device).mkdir(parents=True)
    (root / "sys/bus/pci/devices").mkdir(parents=True)
    (root / "sys/bus/pci/devices/0000:3b:00.0").symlink_to("../../../devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0")
    (root / "sys/bus/pci/devices/0000:00:1f.0").symlink_to("../../../devices/pci0000:00/0000:00:1f.0")
    gpu = "/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0"
    assert sandbox.gpu_binds(root) == [
        *[("--dev-bind-try", str(root / "dev" / name), f"/dev/{name}")
          for name in ("nvidia-caps", "nvidia-uvm", "nvidia0", "nvidiactl")],
        *[("--ro-bind-try", str(root / rel), f"/{rel}") for rel in sandbox.GPU_READ_ONLY],
        ("--ro-bind-try", str(root / gpu.lstrip("/")), gpu), ("--symlink", gpu, "/sys/bus/pci/devices/0000:3b:00.0"),
    ]
    libs = tmp_path / "cuda" / "lib64"
    libs.mkdir(parents=True)
    monkeypatch.setenv("LD_LIBRARY_PATH", f".:lib:{libs}::{tmp_path / 'absent'}:/")
    real = sandbox.gpu_binds
    monkeypatch.setattr(sandbox, "gpu_binds", lambda: real(root))
    args = sandbox._mount_args(Limits(), Isolation(gpu=True))
    bound = [args[i + 2] for i, arg in enumerate(args) if arg in ("--ro-bind-try", "--ro-bind", "--dev-bind-try")]
    assert "/sys" not in bound and "." not in bound and "lib" not in bound and "/" not in bound
    assert gpu in bound and "/sys/devices/pci0000:00/0000:00:1f.0" not in bound and str(libs) in bound
    assert all(not dest.startswith("/sys/") or dest == gpu or dest.lstrip("/") in sandbox.GPU_READ_ONLY
               for dest in bound)
    assert sandbox.minimal_env()["LD_LIBRARY_PATH"] == str(libs)


def test_an_environment_cloned_under_tmp_is_bound_over_the_private_tmp(monkeypatch):
    """A course or `.venv` under /tmp (the README's fresh-clone check, `git clone . /tmp/fresh`) stays visible: the
    private /tmp is mounted first and the allow-list's binds below it on top (before: `execvp .../python: No such
    file or directory`, every student a grader failure)."""
    from autograder import sandbox

    listed = {"read_only": ["/tmp/fresh/.venv", "/usr"], "symlinks": [], "covered": [], "hollowed": [], "absent": []}
    monkeypatch.setattr(sandbox, "allow_list", lambda absent=(): listed)
    args = sandbox._mount_args(sandbox.Limits(), sandbox.Isolation())
    tmpfs = [i for i, a in enumerate(args) if a == "--tmpfs" and args[i + 1] == "/tmp"]
    bind = next(i for i, a in enumerate(args) if a == "--ro-bind" and args[i + 1] == "/tmp/fresh/.venv")
    assert len(tmpfs) == 1 and tmpfs[0] < bind
    assert args[tmpfs[0] - 1] == "1777" and "--dir" in args[tmpfs[0]:bind]  # /tmp/fresh made inside the tmpfs


def bound_under_tmp() -> list[str]:
    """What the sandbox's private /tmp shows: nothing, but the first folder of an allow-listed read-only path that
    lives under /tmp (an environment cloned there), bound over it."""
    from autograder.sandbox import allow_list

    return sorted({Path(p).relative_to("/tmp").parts[0] for p in allow_list()["read_only"]
                   if Path(p).is_relative_to("/tmp")})
