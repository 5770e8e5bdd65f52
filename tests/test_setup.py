"""The set-up files agree with each other; students get course_lib alone, the grader is a package of its own."""

import tomllib

import pytest

import yaml


def test_environment_yml_lists_the_same_dependencies_as_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    grader = tomllib.loads((repo / "autograder" / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    wanted |= set(grader) - {"course-lib"}  # the TA's machine installs both
    env = yaml.safe_load((repo / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip_section) == wanted
    assert "python=3.11" in env["dependencies"]


def test_only_course_lib_is_packaged(repo):
    find = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["course_lib*"]


def test_ci_runs_make_test(repo):
    script = (repo / ".ci" / "run").read_text()
    assert "make test" in script and "set -euo pipefail" in script


def _wheel_files(folder, out) -> list[str]:
    """Names inside the wheel that pip builds from a copy of ``folder`` (no dependencies, no build isolation;
    the copy keeps setuptools' build/ folders out of the checkout)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    copy = out / "tree"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "build", "*.egg-info",
                                                                 "demo_out", "*.pt", "release", "source", "tests"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(copy)], check=True, capture_output=True, text=True)
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel).namelist()


@pytest.mark.slow
def test_the_student_package_holds_course_lib_and_nothing_of_the_grader(repo, tmp_path):
    names = _wheel_files(repo, tmp_path)
    modules = [n for n in names if n.endswith(".py")]
    assert "course_lib/models/baseline.py" in modules
    assert all(n.startswith("course_lib/") for n in modules), [n for n in modules if not n.startswith("course_lib/")]
    assert not any("autograder" in n or n.startswith(("source/", "release/", "tests/")) for n in names)


@pytest.mark.slow
def test_the_grader_is_its_own_installable_package(repo, tmp_path):
    names = _wheel_files(repo / "autograder", tmp_path)
    for module in ("autograder/judge.py", "autograder/sandbox_runner.py", "autograder/checks/segmentation_hw.py",
                   "autograder/checks/segmentation_hw_probes.py", "autograder/reference/segmentation_hw.py",
                   "autograder/standalone/test_submission.py"):
        assert module in names
    assert not any(n.startswith("course_lib/") for n in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    assert metadata.startswith("segmentation_course_grader-")
