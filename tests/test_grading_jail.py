"""The jail's view of the machine: which grader paths it hides, and that a jailed process sees none of them."""

import subprocess
import sys
from pathlib import Path

import pytest

from autograder.sandbox import REPO, Jail, grader_secrets, jail_command, jail_supported


def test_nested_secret_directories_collapse_to_their_parent(tmp_path):
    course = REPO / "demo_out" / "any" / "course"
    dirs, files = grader_secrets(course if course.exists() else tmp_path, None)
    assert all(not (a != b and a.is_relative_to(b)) for a in dirs for b in dirs)
    assert all(not any(f.is_relative_to(d) for d in dirs) for f in files)


@pytest.mark.skipif(not jail_supported(), reason="no jail on this machine (needs Linux, root, unshare, setpriv)")
def test_a_jailed_process_sees_no_grader_file_and_no_network(tmp_path):
    course = tmp_path / "course"
    (course / "submitted" / "other").mkdir(parents=True)
    (course / "submitted" / "other" / "work.ipynb").write_text("secret")
    (course / "gradebook.db").write_text("db")
    dirs, files = grader_secrets(course, f"sqlite:///{course / 'gradebook.db'}")
    probe = f"""
import os, socket
seen = []
for path in {[str(REPO / 'autograder' / 'reference'), str(course / 'submitted'), str(REPO / 'source')]!r}:
    try:
        seen.append((path, os.listdir(path)))
    except OSError:
        pass
try:
    socket.create_connection(("127.0.0.1", 9), timeout=1)
    seen.append("network")
except OSError as err:
    net = type(err).__name__
print(os.getuid(), seen)
"""
    out = subprocess.run(jail_command([sys.executable, "-c", probe], Jail(uid=61007, hide_dirs=dirs, hide_files=files)),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "61007 []"


def test_an_environment_the_jail_cannot_enter_is_named_before_grading():
    """A virtual environment under a directory that others may not enter (mkdtemp's 0700, a private home) would make
    every jailed sandbox fail at once; the preflight names the directory instead."""
    import shutil
    import tempfile

    from autograder.sandbox import jail_reachability_problems

    base = Path(tempfile.mkdtemp())  # under /tmp, which others may enter (pytest's own tmp root may not be)
    try:
        base.chmod(0o755)
        private = base / "private"
        venv = private / "clone" / ".venv"
        venv.mkdir(parents=True)
        private.chmod(0o700)
        problems = jail_reachability_problems([venv])
        assert len(problems) == 1 and str(private) in problems[0] and "mode 700" in problems[0]
        private.chmod(0o755)
        assert jail_reachability_problems([venv]) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)
