"""The adversarial suite: crafted submissions graded in one run beside an honest one (threats 1-5 of the issue).

For every attack: it gains nothing (its score is that of the honest work in it), its row says what happened, the
honest student's grade is unchanged, the gradebook and the course files are intact, and the run goes on.
"""

import hashlib
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from adversarial import ATTACKS, MARKER
from classes import points_without
from autograder.sandbox import Limits, jail_supported

pytestmark = pytest.mark.slow
HW, CONCEPTS = "segmentation_hw", "segmentation_concepts"


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


class Listener:
    """A TCP listener on 127.0.0.1 that records whatever reaches it (bounded: stops with the test)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port, self.received, self.stop = self.sock.getsockname()[1], [], False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.received.append(conn.recv(100))
                conn.close()
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(scope="module")
def attacked(released_course, tmp_path_factory):
    import json
    import shutil

    import nbformat

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
    listener = Listener()
    secret_files = [Path(__file__).resolve().parents[1] / "autograder" / "reference" / "segmentation_hw.py",
                    course.root / "gradebook.db", course.root / "source" / HW / "segmentation_hw.ipynb",
                    course.root / "submitted" / "ref" / HW / "segmentation_hw.ipynb"]
    ctx = {"port": listener.port, "secret_files": secret_files,
           "secret_dirs": [course.root / "submitted" / "ref", course.root / "source", course.root / "autograded"],
           "concepts_release": course.root / "release" / CONCEPTS / f"{CONCEPTS}.ipynb"}
    for attack in ATTACKS:
        attack.build(honest(attack.name, attack.assignment), ctx)
    watched = {"source": course.root / "source", "release": course.root / "release",
               "ref": course.root / "submitted" / "ref"}
    before = {k: tree_digest(v) for k, v in watched.items()}
    opts = GradeOptions(workers=2, limits=Limits(wall_seconds=30))
    results = {r.student: r for r in grade(course, HW, opts=opts)}
    results.update({f"{r.student}@concepts": r for r in grade(course, CONCEPTS, opts=opts)})
    listener.close()
    after = {k: tree_digest(v) for k, v in watched.items()}
    return {"course": course, "results": results, "before": before, "after": after, "listener": listener}


def _row(attacked, attack):
    key = attack.name if attack.assignment == HW else f"{attack.name}@concepts"
    return attacked["results"][key]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_gains_nothing_and_its_row_says_why(attacked, attack):
    if attack.needs_jail and not jail_supported():
        pytest.skip("this machine cannot jail grading (needs Linux, root, unshare, setpriv)")
    row = _row(attacked, attack)
    expected, reason = attack.expected, attack.reason
    if attack.name == "kill_own_kernel" and jail_supported():
        # In the jail the judge's runner is its PID namespace's init, which ignores the signal: the honest work is
        # graded in full and there is nothing to report (nothing else ever executes the notebook).
        expected, reason = points_without(HW, set()), ""
    assert row.auto_points == expected, {c.grade_id: c.message for c in row.checks if not c.passed}
    said = " ".join(row.notes) + " " + " ".join(c.message for c in row.checks)
    assert reason in said
    assert MARKER not in said


def test_honest_students_are_unaffected(attacked):
    ref, ref_concepts = attacked["results"]["ref"], attacked["results"]["ref@concepts"]
    assert ref.failed == set() and ref.notes == () and ref_concepts.failed == set()


def test_course_files_and_gradebook_are_intact(attacked):
    assert attacked["before"] == attacked["after"]
    course = attacked["course"]
    with Gradebook(course.db_url) as gb:
        students = {s.id for s in gb.students}
        assert students == {"ref"} | {a.name for a in ATTACKS}
        assert len(gb.find_assignment(HW).submissions) == 1 + sum(a.assignment == HW for a in ATTACKS)
        ref = gb.find_submission(HW, "ref")
        assert ref.code_score == points_without(HW, set())
    assert not Path(f"/tmp/{MARKER}").exists(), "a pickled checkpoint ran code"
    text = (course.root / "gradebook.db").read_bytes()
    assert MARKER.encode() not in text


def test_nothing_reached_the_network(attacked):
    if not jail_supported():
        pytest.skip("no network namespace on this machine")
    assert attacked["listener"].received == []


def test_no_process_outlives_grading(attacked):
    if not jail_supported():
        pytest.skip("no PID namespace on this machine")
    left = subprocess.run(["pgrep", "-f", f"sleep 987|{MARKER}"], capture_output=True, text=True).stdout.split()
    assert left == []


def test_every_threat_group_is_covered():
    assert {a.threat for a in ATTACKS} == {1, 2, 3, 4, 5} and len(ATTACKS) >= 20
