"""The set-up files agree with each other and install only course_lib."""

import tomllib

import yaml


def test_environment_yml_lists_the_same_dependencies_as_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
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
