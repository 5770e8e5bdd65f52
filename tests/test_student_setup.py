"""The student's JupyterLab shows the student's tools only (``course_lib.student_setup``): nbgrader's formgrader,
create-assignment and exchange extensions are off, its Validate button is on; checked on a real Jupyter server."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from course_lib.student_setup import configure

pytestmark = pytest.mark.slow


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except urllib.error.URLError:  # not listening yet
        return 0


def _server(config_dir: Path, root: Path):
    """A Jupyter server on 127.0.0.1 with a random port and token; yields its base URL and token."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config_dir))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "server", "--no-browser", "--ip=127.0.0.1",
                             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                             "--allow-root"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while _status(f"{base}/api/status?token={token}") != 200:
        assert proc.poll() is None and time.monotonic() < deadline, "the Jupyter server did not start"
        time.sleep(0.3)
    return proc, base, token


def test_the_student_environment_has_validate_and_no_instructor_or_exchange_tools(tmp_path, monkeypatch):
    config_dir = tmp_path / "jupyter_config"
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config_dir))  # the user level: this test's folder
    lines = configure(level="user")
    assert "disabled @jupyter/nbgrader:formgrader" in lines and "enabled @jupyter/nbgrader:validate-assignment" in lines
    page = json.loads((config_dir / "labconfig" / "page_config.json").read_text())
    assert set(page["disabledExtensions"]) == {f"@jupyter/nbgrader:{n}" for n in
                                               ("formgrader", "create-assignment", "assignment-list", "course-list")}
    proc, base, token = _server(config_dir, tmp_path)
    try:
        assert _status(f"{base}/formgrader?token={token}") == 404  # the instructor's tool is not served
        assert _status(f"{base}/courses?token={token}") == 404  # nor the exchange's course list
        import nbgrader

        version = f"{base}/nbgrader_version?version={nbgrader.__version__}&token={token}"
        assert _status(version) == 200  # the Validate button's server side is served
    finally:
        proc.terminate()
        proc.wait(timeout=30)
