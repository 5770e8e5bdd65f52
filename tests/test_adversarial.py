"""The adversarial suite: crafted submissions graded in one run beside an honest one (threats 1-5 of the issue,
and round 3's: issue 22).

For every attack: it gains nothing (its score is that of the honest work in it), its row says what happened, every
suspicion a defence raised reaches the row, the grader's summary cell and the export, the honest student's grade is
unchanged, the gradebook and the course files are intact, nothing is read, nothing is left behind, and the run goes
on. The course is a copy under the temporary folder (not the checkout), graded by this process (root on CI: each
worker's sandboxes as their own unprivileged uid).
"""

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from adversarial import ATTACKS, MARKER
from autograder.records import RecordStore
from autograder.term import GradedSetting
from classes import points_without
from autograder.sandbox import JAIL_UID_BASE, Limits, jail_supported

pytestmark = pytest.mark.slow
HW, CONCEPTS = "segmentation_hw", "segmentation_concepts"


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


class Listener:
    """A TCP listener on 127.0.0.1, a UNIX socket in the host's /tmp and an abstract UNIX socket, recording whatever
    reaches them (bounded: they stop with the test)."""

    def __init__(self, unix_path: Path, abstract: str):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(str(unix_path))
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind("\0" + abstract)
        self.port, self.received, self.stop = self.sock.getsockname()[1], [], False
        self.threads = [threading.Thread(target=self.run, args=(s,), daemon=True)
                        for s in (self.sock, self.unix, self.abstract)]
        for server, thread in zip((self.sock, self.unix, self.abstract), self.threads):
            server.listen(8)
            server.settimeout(0.5)
            thread.start()

    def run(self, server):
        while not self.stop:
            try:
                conn, _ = server.accept()
                self.received.append(conn.recv(100))
                conn.close()
            except OSError:
                continue

    def close(self):
        self.stop = True
        for thread in self.threads:
            thread.join(timeout=2)
        for server in (self.sock, self.unix, self.abstract):
            server.close()


def sandbox_leftovers() -> dict:
    """Sandboxed processes that outlived their grader (see ``_sandboxed_processes``), and files of the pool's uids or
    named by the attacks in the host's /tmp and /dev/shm."""
    uids = [JAIL_UID_BASE, JAIL_UID_BASE + 1]
    processes = [f"{pid}: {command[:120]}" for pid, command in _sandboxed_processes() if _orphaned(pid)]
    files = [str(p) for folder in (Path(tempfile.gettempdir()), Path("/dev/shm")) if folder.is_dir()
             for p in folder.iterdir() if _owner(p) in uids or MARKER in p.name]
    return {"processes": processes, "files": files}


def _sandboxed_processes() -> list[tuple[int, str]]:
    """(pid, command line) of the local pool's sandboxed processes started from this checkout's Python, or the
    attacks' own sleepers, whether or not a grader still owns them."""
    uids = [JAIL_UID_BASE, JAIL_UID_BASE + 1]
    ours = (sys.executable, "sleep 987", MARKER)
    found = []
    for pid in subprocess.run(["pgrep", "-u", ",".join(map(str, uids))], capture_output=True, text=True).stdout.split():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(mark in command for mark in ours):
            found.append((int(pid), command))
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``ancestor`` is among ``pid``'s ancestors (False once either is gone)."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def _orphaned(pid: int) -> bool:
    """Whether no live grader owns ``pid``: its ancestors reach init without a pytest process or an ``autograder``
    command. A sandbox of a grading that still runs (another test of this suite on the other xdist worker, with the
    same uids and Python) is not a leftover; one that outlived its grader was re-parented and is."""
    while pid > 1:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False  # gone: not left over
        if "pytest" in command or "-m autograder" in command:
            return False
        pid = parent
    return True


def new_leftovers(before: dict) -> dict:
    """``sandbox_leftovers`` that were not there before (another session's grader on a shared machine may own files
    of the same uids in /tmp)."""
    now = sandbox_leftovers()
    return {"processes": now["processes"], "files": sorted(set(now["files"]) - set(before["files"]))}


def _owner(path: Path) -> int | None:
    try:
        return path.lstat().st_uid
    except OSError:
        return None


@pytest.fixture(scope="module")
def attacked(released_course, tmp_path_factory):
    if not jail_supported():  # unsandboxed, the attacks are real: one overwrote the grader's own source as root
        pytest.skip("no sandbox on this machine: the attacks are not run without one")
    import json
    import shutil

    import nbformat

    from autograder.heldout import grading_data
    from autograder.pipeline import GradeOptions, grade
    from classes import CONCEPT_TOPICS, student_notebook
    from conftest import copy_course

    root = tmp_path_factory.mktemp("attacks")
    course = copy_course(released_course, root / "course")
    artifacts = course.root / "source" / HW
    metrics = json.loads((artifacts / "segmentation_hw_results.json").read_text())["metrics"]

    def honest(student: str, assignment: str) -> Path:
        folder = course.root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        if assignment == HW:
            nb = student_notebook(course, {"residual_block", "segmentation_model"}, True, metrics, HW)
            for name in ("segmentation_hw_checkpoint.pt", "segmentation_hw_results.json",
                         "segmentation_hw_nodown_checkpoint.pt", "segmentation_hw_nodown_results.json"):
                shutil.copy(artifacts / name, folder / name)
        else:
            nb = student_notebook(course, set(CONCEPT_TOPICS), True, None, CONCEPTS)
        nbformat.write(nb, folder / f"{assignment}.ipynb")
        return folder

    honest("ref", HW)
    honest("ref", CONCEPTS)
    honest("ben", HW)  # the model without downsampling: the honest twin of the capped lookup
    for name in ("segmentation_hw_checkpoint.pt", "segmentation_hw_results.json"):
        shutil.copy(artifacts / name.replace("_hw_", "_hw_nodown_"), course.root / "submitted" / "ben" / HW / name)
    nodown = json.loads((artifacts / "segmentation_hw_nodown_results.json").read_text())["metrics"]
    nbformat.write(student_notebook(course, {"residual_block", "segmentation_model"}, True, nodown, HW),
                   course.root / "submitted" / "ben" / HW / f"{HW}.ipynb")
    secret_file = course.root / "grading" / "term_secret.txt"
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    secret_file.write_text(f"{MARKER}-the-term-secret\n")
    (course.root / "canvas_gradebook.csv").write_text(f"Student,ID,Email\n{MARKER} Roster,1,{MARKER}@uni.example\n")
    host_tmp = Path(tempfile.gettempdir())
    unix_path = host_tmp / f"segmentation-host-db-{os.getpid()}.sock"
    host_tmp_file = host_tmp / f"segmentation-host-file-{os.getpid()}"
    host_tmp_file.write_text(MARKER)
    listener = Listener(unix_path, f"segmentation-abstract-{os.getpid()}")
    secret_files = [Path(__file__).resolve().parents[1] / "autograder" / "reference" / "segmentation_hw.py",
                    course.root / "gradebook.db", course.root / "source" / HW / "segmentation_hw.ipynb",
                    course.root / "submitted" / "ref" / HW / "segmentation_hw.ipynb", secret_file]
    ctx = {"port": listener.port, "secret_files": secret_files,
           "secret_dirs": [course.root / "submitted" / "ref", course.root / "source", course.root / "autograded"],
           "concepts_release": course.root / "release" / CONCEPTS / f"{CONCEPTS}.ipynb",
           "course": course, "course_root": course.root, "repo": Path(__file__).resolve().parents[1],
           "metrics": metrics, "nodown_metrics": nodown, "public": grading_data(course.root).public,
           "secret_file": secret_file, "unix_socket": unix_path, "abstract_socket": f"segmentation-abstract-{os.getpid()}",
           "host_tmp_file": host_tmp_file,
           "classmate_checkpoint": course.root / "submitted" / "ref" / HW / "segmentation_hw_checkpoint.pt"}
    for attack in ATTACKS:
        attack.build(honest(attack.name, attack.assignment), ctx)
    leftovers_before = sandbox_leftovers()
    watched = {"source": course.root / "source", "release": course.root / "release",
               "ref": course.root / "submitted" / "ref"}
    before = {k: tree_digest(v) for k, v in watched.items()}
    # the wall clock is a safety cap: an honest submission's sandbox takes 20-30 s on a 2-core machine kept busy
    opts = GradeOptions(workers=2, limits=Limits(wall_seconds=60))
    results = {r.student: r for r in grade(course, HW, opts=opts)}
    results.update({f"{r.student}@concepts": r for r in grade(course, CONCEPTS, opts=opts)})
    listener.close()
    unix_path.unlink(missing_ok=True)
    host_tmp_file.unlink(missing_ok=True)
    after = {k: tree_digest(v) for k, v in watched.items()}
    return {"course": course, "results": results, "before": before, "after": after, "listener": listener,
            "leftovers": new_leftovers(leftovers_before)}


def _row(attacked, attack):
    key = attack.name if attack.assignment == HW else f"{attack.name}@concepts"
    return attacked["results"][key]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_gains_nothing_and_its_row_says_why(attacked, attack):
    if attack.needs_jail and not jail_supported():
        pytest.skip("this machine cannot sandbox grading (bubblewrap and user namespaces, or root)")
    row = _row(attacked, attack)
    assert row.auto_points == attack.expected, (row.status, row.notes,
                                                {c.grade_id: c.message for c in row.checks if not c.passed})
    said = " ".join(row.notes) + " " + " ".join(c.message for c in row.checks)
    assert attack.reason in said
    assert MARKER not in said


SUSPECTED = [a for a in ATTACKS if a.suspicion]


@pytest.mark.parametrize("attack", SUSPECTED, ids=[a.name for a in SUSPECTED])
def test_every_suspicion_reaches_the_row_the_summary_cell_and_the_export(attacked, attack):
    from autograder.export import scores_table

    row = _row(attacked, attack)
    assert any(attack.suspicion in flag for flag in row.flags), row.notes
    assert any(attack.suspicion in note for note in row.notes if note.startswith("suspicion: ")), row.notes
    course = attacked["course"]
    graded = nbformat.read(course.root / "autograded" / attack.name / HW / f"{HW}.ipynb", as_version=4)
    assert attack.suspicion in graded.cells[0].source and "suspicion" in graded.cells[0].source
    table = scores_table(course, HW).set_index("student")
    assert attack.suspicion in table.loc[attack.name, "suspicions"]


def test_made_up_metadata_is_graded_rendered_and_leaks_nothing(attacked):
    """The notebook with ``"points": "ten"`` is rendered by nbgrader (the grader's summary first, the release's
    points back), and the hidden line the student pasted is theirs, not a leak of the grader's."""
    from autograder.leaks import hidden_in_instructor_cells

    course = attacked["course"]
    graded = course.root / "autograded" / "made_up_points" / HW / f"{HW}.ipynb"
    nb = nbformat.read(graded, as_version=4)
    assert nb.cells[0].source.startswith("**Grader's summary**")
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    assert isinstance(cells["test_residual_block"].metadata["nbgrader"]["points"], float)
    own = course.root / "submitted" / "made_up_points" / HW / f"{HW}.ipynb"
    assert hidden_in_instructor_cells([graded], course.root / "source" / HW / f"{HW}.ipynb", {graded: own}) == []


def test_honest_students_are_unaffected_and_never_suspected(attacked):
    results = attacked["results"]
    assert results["ref"].failed == set() and results["ref"].notes == ()
    assert results["ref@concepts"].failed == set()
    ben = results["ben"]  # graded on its held-out figure: exactly the term's tiers that figure misses fail
    tiers = GradedSetting.read(attacked["course"].root).tiers.as_dict()
    assert ben.failed == {f"test_miou_{name}" for name, threshold in tiers.items() if ben.miou.heldout < threshold}
    assert ben.notes == ()
    quiet = [a.name for a in ATTACKS if not a.suspicion and a.assignment == HW]
    assert not [name for name in quiet if results[name].flags]


def test_a_lookup_kept_under_the_gap_gains_nothing_over_its_honest_twin(attacked):
    """The capped lookup scores above the target tier on the public split, and would have earned it under round 2's
    rule (public figure within 0.08 of the held-out one); the held-out figure alone decides, as for ben."""
    row, twin = attacked["results"]["capped_lookup"], attacked["results"]["ben"]
    assert row.miou.public >= 0.15 > row.miou.heldout
    assert row.miou.public - row.miou.heldout < 0.08
    assert row.auto_points == twin.auto_points


def test_masks_embedded_in_the_code_are_seen_by_the_inspection_alone(attacked):
    """Round 5's registration, reduced: the masks in the model's cell answer the public images they cover (public
    mIoU above the honest twin's), only with the submitted weights, and beside the parameters the checkpoint stores
    nothing; so the one suspicion is the inspection's, naming the cell and the line of the embedded string."""
    row, twin = attacked["results"]["embedded_masks"], attacked["results"]["ref"]
    assert row.miou.public > twin.miou.public and row.miou.heldout == pytest.approx(twin.miou.heldout)
    [flag] = row.flags
    assert flag.startswith("cell segmentation_model carries embedded data") and "string literal of" in flag
    assert "for a person to judge" in flag
    copier = attacked["results"]["code_run_from_a_string"]
    assert [f.split(" (")[0] for f in copier.flags] == ["cell residual_block carries embedded data or builds code at "
                                                        "run time"]


def test_course_files_and_gradebook_are_intact(attacked):
    assert attacked["before"] == attacked["after"]
    course = attacked["course"]
    with Gradebook(course.db_url) as gb:
        students = {s.id for s in gb.students}
        assert students == {"ref", "ben"} | {a.name for a in ATTACKS}
        assert len(gb.find_assignment(HW).submissions) == 2 + sum(a.assignment == HW for a in ATTACKS)
        ref = gb.find_submission(HW, "ref")
        assert ref.code_score == points_without(HW, set())
    assert not Path(f"/tmp/{MARKER}").exists(), "a pickled checkpoint ran code"
    text = (course.root / "gradebook.db").read_bytes()
    assert MARKER.encode() not in text.replace(f"{MARKER} Roster".encode(), b"")


def test_nothing_reached_the_network_or_a_host_socket(attacked):
    if not jail_supported():
        pytest.skip("no sandbox on this machine")
    assert attacked["listener"].received == []


def test_no_process_outlives_grading_and_nothing_is_left_on_disk(attacked):
    if not jail_supported():
        pytest.skip("no sandbox on this machine")
    left = subprocess.run(["pgrep", "-f", f"sleep 987|{MARKER}"], capture_output=True, text=True).stdout.split()
    assert left == []
    assert attacked["leftovers"] == {"processes": [], "files": []}


def test_every_threat_group_is_covered():
    assert {a.threat for a in ATTACKS} == {1, 2, 3, 4, 5} and len(ATTACKS) >= 34


SLEEPER = "import time\nwhile True:\n    time.sleep(1)\n\n"


def test_a_grader_killed_mid_run_leaves_nothing_and_grading_again_completes(released_course, tmp_path):
    """``grade`` is killed with SIGKILL while a student's code runs: no sandboxed process survives, nothing is left
    on disk, and ``grade`` started again grades the student (its code stopped at the wall-clock limit)."""
    import signal
    import time

    from adversarial import _edit_cell
    from classes import student_notebook
    from conftest import copy_course

    if not jail_supported():
        pytest.skip("no sandbox on this machine")
    course = copy_course(released_course, tmp_path / "course")
    log = tmp_path / "grade.log"
    folder = course.root / "submitted" / "sleeper" / HW
    folder.mkdir(parents=True)
    nbformat.write(student_notebook(course, {"residual_block", "segmentation_model"}, True, None, HW),
                   folder / f"{HW}.ipynb")
    _edit_cell(folder, "residual_block", prefix=SLEEPER)
    before = sandbox_leftovers()
    command = [sys.executable, "-m", "autograder", "--course", str(course.root), "grade", HW, "--workers", "1",
               "--code-timeout", "20"]
    with open(log, "w") as out:
        grader = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 900  # a safety cap only: it waits for the sandbox or for the grader's end
        def running() -> list[int]:  # this grader's own sandboxed processes (not yet orphans: it still lives)
            return [pid for pid, _ in _sandboxed_processes() if _descends_from(pid, grader.pid)]

        while not running() and grader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running(), f"the sandbox never started: {log.read_text()[-2000:]}"
    finally:
        grader.send_signal(signal.SIGKILL)
        grader.wait()
    deadline = time.monotonic() + 10
    while sandbox_leftovers()["processes"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert new_leftovers(before) == {"processes": [], "files": []}
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    result = RecordStore(course, HW).get("sleeper")
    assert "limit" in " ".join(result.notes) and result.auto_points == 2.0


def test_a_user_other_than_root_grades_in_the_same_sandbox(tmp_path):
    """A TA's own account (uid 61500) grades a class in a course folder of its own: the sandbox runs unprivileged
    (bubblewrap in a user namespace) and every row says it was isolated. Skipped where this Python cannot be run by
    another user (an interpreter under /root) or the kernel gives unprivileged users no namespaces."""
    import shutil

    from classes import concepts_class

    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    as_ta = ["setpriv", "--reuid=61500", "--regid=61500", "--clear-groups"]
    if subprocess.run([*as_ta, sys.executable, "-c", "import autograder"], capture_output=True).returncode != 0:
        pytest.skip(f"{sys.executable} cannot be run by another user here")
    probe = "from autograder.sandbox import isolation_problem as p; print(p() or '')"
    problem = subprocess.run([*as_ta, sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip()
    if problem:
        pytest.skip(f"no sandbox for an unprivileged user here: {problem}")
    home = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        course = concepts_class(home / "ta")
        subprocess.run(["chown", "-R", "61500:61500", str(home)], check=True)
        os.chmod(home, 0o755)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "SEGMENTATION_TERM_SECRET": "a-ta-s-own-term-secret"}
        run = subprocess.run([*as_ta, sys.executable, "-m", "autograder", "--course", str(course.root), "grade", CONCEPTS,
                              "--workers", "1"], capture_output=True, text=True, env=env, timeout=1200)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        ada = RecordStore(course, CONCEPTS).get("ada")
        assert ada.failed == set() and ada.sandbox["isolated"] is True and ada.notes == ()
    finally:
        shutil.rmtree(home, ignore_errors=True)
