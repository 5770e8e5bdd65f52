"""JupyterLab in a real browser for the tests: Playwright for Python driving Chromium from the system packages.

``JupyterLab`` starts ``jupyter lab`` on 127.0.0.1 with a random port and token (ended by its process id);
``NotebookPage`` drives one notebook the way a person does (select a cell, Shift+Enter, type into the editor, press
toolbar buttons) and saves a screenshot of each step under the test's folder.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_MS = 180_000


def chromium_path() -> str | None:
    return next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, in words (None when they can)."""
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (make venv installs it with the dev extras)"
    if chromium_path() is None:
        return "no Chromium on this machine: `apt-get install chromium` (.ci/run does it when it may)"
    return None


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except urllib.error.URLError:
        return 0


class JupyterLab:
    """``jupyter lab`` serving ``root`` with the Jupyter config in ``config_dir`` (None: the environment's)."""

    def __init__(self, root: Path, config_dir: Path | None = None, env: dict | None = None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ, **(env or {}))
        environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
        if config_dir is not None:
            environment["JUPYTER_CONFIG_DIR"] = str(config_dir)
        self.log = open(Path(root).parent / f"jupyterlab-{self.port}.log", "w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
             f"--port={self.port}", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--allow-root", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=environment, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
        deadline = time.monotonic() + 90
        while http_status(f"{self.base}/api/status?token={self.token}") != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"JupyterLab did not start; see {self.log.name}")
            time.sleep(0.3)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}{'&' if '?' in path else '?'}token={self.token}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@contextmanager
def browser_page(shots: Path):
    """A ``NotebookPage`` on a fresh page of headless Chromium (``--no-sandbox`` as root), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)
        try:
            yield NotebookPage(browser.new_page(viewport={"width": 1400, "height": 1000}), shots)
        finally:
            browser.close()


class NotebookPage:
    """One open notebook in JupyterLab; ``shot(name)`` saves ``<shots>/<nn>-<name>.png``."""

    def __init__(self, page, shots: Path):
        self.page, self.shots, self._count = page, shots, 0
        shots.mkdir(parents=True, exist_ok=True)
        page.set_default_timeout(TIMEOUT_MS)

    def shot(self, name: str) -> Path:
        self._count += 1
        path = self.shots / f"{self._count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        self.page.locator(".jp-Notebook-ExecutionIndicator, .jp-KernelStatus").first.wait_for()

    def wait_for_kernel(self) -> None:
        """Until the status bar says the notebook's kernel is idle (started, its first messages answered)."""
        self.page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\|\s*Idle")).first.wait_for()

    def cell(self, index: int):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def run(self, index: int, timeout_ms: int = TIMEOUT_MS) -> str:
        """Selects cell ``index``, presses Shift+Enter and waits for its execution count; returns its output text."""
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        prompt = cell.locator(".jp-InputArea-prompt")
        before = prompt.inner_text()
        prompt.click()
        self.page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            text = prompt.inner_text()
            if re.search(r"\[\d+\]", text) and text != before:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell {index} did not finish (prompt {text!r})")
            time.sleep(0.2)
        return self.output(index)

    def output(self, index: int) -> str:
        outputs = self.cell(index).locator(".jp-OutputArea-output")
        return "\n".join(outputs.nth(i).inner_text() for i in range(outputs.count()))

    def images(self, index: int) -> int:
        """Rendered images (figures) in the output of cell ``index``."""
        return self.cell(index).locator(".jp-OutputArea-output img").count()

    def set_source(self, index: int, code: str) -> None:
        """Replaces the cell's code as a student would: click into the editor, select all, type (paste) the code."""
        editor = self.cell(index).locator(".cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Escape")  # back to command mode

    def set_markdown(self, index: int, text: str) -> None:
        """Types ``text`` into Markdown cell ``index`` as a student would (open its editor, replace the text) and
        renders it again (Shift+Enter); nothing is saved."""
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-prompt").click()  # select the cell (command mode)
        self.page.keyboard.press("Enter")  # edit mode: the rendered Markdown turns into its editor
        editor = cell.locator(".cm-content")
        editor.wait_for()
        editor.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(text)
        self.page.keyboard.press("Shift+Enter")

    def save(self) -> None:
        self.page.keyboard.press("Control+S")
        self.page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=30_000)
