"""A student's JupyterLab shows the student's tools only: ``python -m course_lib.student_setup`` (once, after
installing course_lib).

course_lib depends on nbgrader (its Validate button), and installing nbgrader enables all of its JupyterLab and
server extensions, the instructor's too. This module uses nbgrader's documented switches (``jupyter labextension
disable``, and the server's ``jpserver_extensions`` setting) to turn off, in the student's environment:

- ``formgrader`` and ``create-assignment``: the instructor's tools;
- ``assignment-list`` and ``course-list``: nbgrader's exchange, which this course does not use (notebooks come
  from and go back to the LMS), and which would otherwise show "Error fetching courses!";
- ``menu``: the "Nbgrader" entry of the menu bar, which only opens the tools above and would stay there, empty;

and keeps ``validate-assignment`` (the Validate button in the notebook's toolbar, a plugin of its own). It also turns off JupyterLab's own news prompt ("Would you
like to get notified about official Jupyter news?", the ``announcements`` plugin, as JupyterLab's documentation
says), which asks a student about something unrelated to the course on first start. ``--level user`` writes to the
user's Jupyter config (``$JUPYTER_CONFIG_DIR``), ``sys_prefix`` (the default) to the virtual environment's.

It also writes this environment's Python kernel description (``language_info``) into the course notebooks found
under the current folder (``--notebooks`` names others). JupyterLab writes that description into a notebook as soon
as its kernel starts, and a notebook whose description differs is marked unsaved before the student has typed
anything (jupyter/notebook issue 2123); stamped once here, a freshly opened notebook opens clean.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

INSTRUCTOR_LAB_EXTENSIONS = ("formgrader", "create-assignment", "assignment-list", "course-list", "menu")
STUDENT_LAB_EXTENSIONS = ("validate-assignment",)
JUPYTERLAB_NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"
INSTRUCTOR_SERVER_EXTENSIONS = ("formgrader", "assignment_list", "course_list")
STUDENT_SERVER_EXTENSIONS = ("validate_assignment",)


def _jupyter(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "jupyter"), *args], capture_output=True, text=True)


def _config_dir(level: str) -> Path:
    from jupyter_core.paths import jupyter_config_dir

    return Path(sys.prefix) / "etc" / "jupyter" if level == "sys_prefix" else Path(jupyter_config_dir())


def configure(level: str = "sys_prefix") -> list[str]:
    """Disables the instructor's and the exchange's nbgrader extensions and enables the student's.

    The lab extensions go through ``jupyter labextension disable|enable``. The server extensions are set in the
    level's ``jupyter_server_config.json`` (``ServerApp.jpserver_extensions``, which overrides the
    ``jupyter_server_config.d`` files nbgrader installs; ``jupyter server extension disable`` refuses nbgrader's
    per-module extensions: "could not be found").

    Args:
        level: ``"sys_prefix"`` (this environment) or ``"user"`` (``$JUPYTER_CONFIG_DIR``).
    Returns:
        One line per extension switched, e.g. ``"disabled @jupyter/nbgrader:formgrader"``.
    Raises:
        RuntimeError: a ``jupyter`` command failed; its message says which and why.
    """
    done = []
    off = [f"@jupyter/nbgrader:{name}" for name in INSTRUCTOR_LAB_EXTENSIONS] + [JUPYTERLAB_NEWS_PLUGIN]
    on = [f"@jupyter/nbgrader:{name}" for name in STUDENT_LAB_EXTENSIONS]
    for verb, names in (("disable", off), ("enable", on)):
        command = ("labextension", verb, *names, f"--level={level}")
        proc = _jupyter(*command)
        if proc.returncode != 0:
            raise RuntimeError(f"`jupyter {' '.join(command)}` failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
        done += [f"{verb}d {name}" for name in names]
    switches = {f"nbgrader.server_extensions.{name}": False for name in INSTRUCTOR_SERVER_EXTENSIONS}
    switches |= {f"nbgrader.server_extensions.{name}": True for name in STUDENT_SERVER_EXTENSIONS}
    path = _config_dir(level) / "jupyter_server_config.json"  # a traitlets setting: it wins over the .d files
    config = json.loads(path.read_text()) if path.is_file() else {}
    config.setdefault("ServerApp", {}).setdefault("jpserver_extensions", {}).update(switches)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    done += [f"{'enabled' if on else 'disabled'} {name}" for name, on in switches.items()]
    return done


def kernel_language_info() -> dict:
    """The ``language_info`` that this environment's Python kernel (ipykernel) reports when it starts."""
    from ipykernel.ipkernel import IPythonKernel

    return dict(IPythonKernel.language_info)


def stamp_notebooks(folder: Path) -> list[Path]:
    """Writes ``kernel_language_info()`` into every course notebook (one with nbgrader cells) under ``folder`` whose
    metadata differs, and nothing else (no cell is touched). Returns the notebooks written."""
    import nbformat

    info, written = kernel_language_info(), []
    for path in sorted(Path(folder).rglob("*.ipynb")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):  # checkpoints, virtual environments
            continue
        nb = nbformat.read(path, as_version=4)
        if not any("nbgrader" in cell.metadata for cell in nb.cells) or nb.metadata.get("language_info") == info:
            continue
        nb.metadata["language_info"] = info
        nbformat.write(nb, path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.student_setup", description=__doc__.splitlines()[0])
    parser.add_argument("--level", choices=("sys_prefix", "user"), default="sys_prefix")
    parser.add_argument("--notebooks", type=Path, default=Path.cwd(),
                        help="folder of the course notebooks to stamp with this kernel's description (default: here)")
    args = parser.parse_args(argv)
    if not args.notebooks.is_dir():  # before anything is configured
        print(f"error: --notebooks {args.notebooks} is not a folder: give the folder of the unpacked bundle",
              file=sys.stderr)
        return 2
    for line in configure(args.level):
        print(line)
    for path in stamp_notebooks(args.notebooks):
        print(f"stamped {path} with this Python's kernel description (it opens without unsaved changes)")
    print("JupyterLab now shows the student's tools: restart it if it is running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
