"""The student bundle: the release notebooks, the course_lib wheel, an environment file and a README, and nothing
a student must not get (checked here independently of the bundle's own scan)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.bundle import build_bundle
from autograder.course import Course
from autograder.errors import GraderError
from notebooks import ASSIGNMENTS, hidden_regions, solution_regions

REPO = Path(__file__).resolve().parents[1]


def course_copy(target: Path) -> Course:
    """A course made of this repository's course files (sources, committed release), without its build outputs."""
    target.mkdir(parents=True)
    for name in ("nbgrader_config.py", "course.toml"):
        shutil.copy(REPO / name, target / name)
    for folder in ("source", "release"):
        shutil.copytree(REPO / folder, target / folder, ignore=shutil.ignore_patterns("*.pt", "*_results.json"))
    return Course(target.resolve())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The bundle's zip, unpacked (the wheel too): {relative path: bytes}."""
    tmp = tmp_path_factory.mktemp("bundle")
    archive = build_bundle(course_copy(tmp / "course"), tmp / "out" / "student_bundle", log=lambda *a: None)
    files = {}
    with zipfile.ZipFile(archive) as outer:
        for name in outer.namelist():
            if name.endswith("/"):
                continue
            data = outer.read(name)
            files[name] = data
            if name.endswith(".whl"):
                with zipfile.ZipFile(outer.open(name)) as wheel:
                    files.update({f"{name}!/{inner}": wheel.read(inner) for inner in wheel.namelist()})
    return archive, files


def grader_only_text() -> dict[str, set[str]]:
    """Lines (30+ characters) students must never see, by kind: solution regions, hidden tests, model answers
    (Markdown solution cells), the reference solutions' code, minus anything the release itself shows."""
    kinds = {"solution": set(), "hidden test": set(), "model answer": set(), "reference solution": set()}
    public = set()
    for name in ASSIGNMENTS:
        release = nbformat.read(REPO / "release" / name / f"{name}.ipynb", as_version=4)
        public |= {line.strip() for cell in release.cells for line in cell.source.splitlines()}
        for cell in nbformat.read(REPO / "source" / name / f"{name}.ipynb", as_version=4).cells:
            answer = cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution")
            kinds["solution"] |= {line for region in solution_regions(cell.source) for line in region.splitlines()}
            kinds["hidden test"] |= {line for region in hidden_regions(cell.source) for line in region.splitlines()}
            kinds["model answer"] |= set(cell.source.splitlines()) if answer else set()
    for path in (REPO / "autograder" / "reference").glob("*.py"):
        kinds["reference solution"] |= {line for line in path.read_text().splitlines()
                                        if not line.strip().startswith(("import ", "from ", "#"))}
    return {kind: {line.strip() for line in lines if len(line.strip()) >= 30} - public for kind, lines in kinds.items()}


def test_the_bundle_holds_the_release_the_wheel_an_environment_and_a_readme(bundle):
    archive, files = bundle
    top = {name.split("/", 1)[1] for name in files if "!/" not in name}
    assert top == {"README.md", "environment.yml", "wheels/course_lib-0.1.0-py3-none-any.whl",
                   *(f"{a}/{a}.ipynb" for a in ASSIGNMENTS)}
    for name in ASSIGNMENTS:
        assert files[f"student_bundle/{name}/{name}.ipynb"] == (REPO / "release" / name / f"{name}.ipynb").read_bytes()
    modules = [n.split("!/")[1] for n in files if "!/" in n and n.endswith(".py")]
    assert modules and all(m.startswith("course_lib/") for m in modules)
    readme = files["student_bundle/README.md"].decode()
    assert "pip install wheels/course_lib-0.1.0-py3-none-any.whl" in readme and "git+" not in readme
    assert "`segmentation_hw_checkpoint.pt`" in readme and 'MODE = "QUICK"' in readme
    assert "./wheels/course_lib-0.1.0-py3-none-any.whl" in files["student_bundle/environment.yml"].decode()


def test_the_bundle_holds_no_answer_no_grader_code_and_not_the_terms_secret(bundle):
    _, files = bundle
    text = {name: data.decode("utf-8", errors="ignore") for name, data in files.items()}
    for kind, lines in grader_only_text().items():
        assert lines, f"no {kind} lines were found to look for"
        leaked = [(name, line) for name, body in text.items() for line in lines if line in body]
        assert not leaked, f"{kind} in the bundle: {leaked[:3]}"
    assert not any(marker in body for body in text.values()
                   for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "hidden_check", "import autograder"))
    assert not any("autograder" in name or name.endswith((".pt", "term_secret.txt", ".db")) for name in files)
    secret = os.environ["SEGMENTATION_TERM_SECRET"].encode()
    assert not any(secret in data for data in files.values())


@pytest.mark.slow
def test_the_wheel_installs_and_its_library_loads(bundle, tmp_path):
    archive, _ = bundle
    wheel = next((archive.parent / "student_bundle" / "wheels").glob("*.whl"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    code = "import course_lib, course_lib.data as d; print(course_lib.__file__); print(len(d.load_synthetic('val', num_images=3)))"
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith(str(target)) and out[1] == "3"


def test_a_bundle_with_grader_material_is_refused(tmp_path):
    course = course_copy(tmp_path / "course")
    source = course.root / "source" / "segmentation_hw" / "segmentation_hw.ipynb"
    shutil.copy(source, course.root / "release" / "segmentation_hw" / "notes.ipynb")  # the instructor's slip
    with pytest.raises(GraderError, match="REFUSED"):
        build_bundle(course, tmp_path / "out" / "student_bundle", log=lambda *a: None)
    assert not (tmp_path / "out" / "student_bundle.zip").exists()


@pytest.mark.slow  # a subprocess or a whole release: the full suite's, not the fast tier's
def test_the_bundle_announces_the_declared_term_its_tiers_its_data_file_and_a_gpu_path(tmp_path):
    """A VOC term on a packed file with tiers of its own: the README names them and says how to train on a GPU, and
    the wheel carries the announcement that the notebooks read (``course_lib.term.announced``)."""
    from test_data import build_voc_tree

    from course_lib.data import DataSource
    from course_lib.data.packed import pack

    build_voc_tree(tmp_path / "voc")
    data_file = tmp_path / "voc64.npz"
    pack(DataSource("voc", tmp_path / "voc"), 64, data_file, log=lambda line: None)
    course = course_copy(tmp_path / "course")
    (course.root / "course.toml").write_text(f'[grading]\ndata = "voc:{data_file}"\nimage_size = 64\nmode = "FULL"\n'
                                             + 'tiers = { target = 0.2, good = 0.3, excellent = 0.4 }\n')
    said = []
    archive = build_bundle(course, tmp_path / "out" / "student_bundle", log=said.append)
    readme = (archive.parent / "student_bundle" / "README.md").read_text()
    assert "grades the homework in FULL mode on voc data at 64x64" in readme
    assert '`DATA = "voc:~/data/voc64.npz"`' in readme and "`voc64.npz`: download it from the LMS" in readme
    assert "**Tiers** (5 points each)" in readme and "0.2 (target), 0.3 (good), 0.4 (excellent)" in readme
    assert "0.35" not in readme  # the homework's default top tier is not this term's
    gpu = readme[readme.index("## Training on a GPU"):]
    for words in ("Colab", "Kaggle", "Slurm", "!pip install -q /content/course_lib-0.1.0-py3-none-any.whl",
                  '`DATA = "voc:/content/voc64.npz"`', "/kaggle/working", "120 epochs", "an estimate",
                  "srun --partition=gpu --gres=gpu:1", "ssh -N -L 8888"):
        assert words in gpu, words
    assert any(f"upload the term's data file too: {data_file}" in line for line in said)
    wheel = next((archive.parent / "student_bundle" / "wheels").glob("*.whl"))
    unpacked = tmp_path / "wheel"
    zipfile.ZipFile(wheel).extractall(unpacked)
    assert (unpacked / "course_lib" / "_announced.py").is_file()
    code = ("import sys, os; sys.path.insert(0, sys.argv[1]); os.chdir(sys.argv[1]); import course_lib.term as t; "
            "assert t.__file__.startswith(sys.argv[1]); a = t.announced(); print(a.data, a.mode, a.data_file, "
            "t.tiers().as_dict())")
    env = {k: v for k, v in os.environ.items() if k != "SEGMENTATION_COURSE_ROOT"}
    out = subprocess.run([sys.executable, "-I", "-c", code, str(unpacked)], capture_output=True, text=True, env=env,
                         check=True).stdout.strip()
    assert out == "voc FULL voc64.npz {'target': 0.2, 'good': 0.3, 'excellent': 0.4}"


@pytest.mark.slow  # a subprocess or a whole release: the full suite's, not the fast tier's
def test_the_readme_lists_each_assignment_its_due_date_its_files_and_the_measured_time(tmp_path, monkeypatch):
    """Due dates come from the gradebook (what `nbgrader db assignment add --duedate` sets), one line per assignment;
    the files to upload are listed one by one; the QUICK time is the one measured figure (recipes.QUICK_TIME)."""
    from datetime import datetime

    # nbgrader runs its migration tool (alembic) by name when it makes a gradebook: this interpreter's bin/ first
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")

    from nbgrader.api import Gradebook

    from course_lib.train.recipes import QUICK

    course = course_copy(tmp_path / "course")
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_assignment("segmentation_hw", duedate=datetime(2026, 12, 1, 23, 59))
        gb.update_or_create_assignment("segmentation_concepts")  # in the gradebook, no due date
    archive = build_bundle(course, tmp_path / "out" / "student_bundle", log=lambda *a: None)
    readme = (archive.parent / "student_bundle" / "README.md").read_text()
    listed = readme[readme.index("## Assignments"):].split("\n\n")[1].splitlines()
    assert listed == [
        "- `segmentation_hw/segmentation_hw.ipynb`: Homework: semantic segmentation with residual networks; due "
        "2026-12-01 23:59 UTC.",
        "- `segmentation_concepts/segmentation_concepts.ipynb`: Segmentation concepts: ten topics, ten small experiments;"
        " no due date set (the LMS shows it when there is one).",
    ], listed
    hand_in = readme[readme.index("## Hand in"):]
    for name in ("segmentation_hw.ipynb", "segmentation_hw_checkpoint.pt", "segmentation_hw_results.json",
                 "segmentation_hw_nodown_checkpoint.pt", "segmentation_hw_nodown_results.json",
                 "segmentation_concepts.ipynb"):
        assert f"\n  - `{name}`\n" in hand_in + "\n", name  # each file on a line of its own
    assert "Upload each file on its own" in hand_in and "a renamed file is not graded" in hand_in
    assert QUICK.minutes in " ".join(readme.split())
    assert "stops unless you set `INSIST = True`" in readme


def test_a_course_without_a_gradebook_says_no_due_date_and_gets_none_made(tmp_path):
    course = course_copy(tmp_path / "course")
    archive = build_bundle(course, tmp_path / "out" / "student_bundle", log=lambda *a: None)
    readme = (archive.parent / "student_bundle" / "README.md").read_text()
    assert readme.count("no due date set") == 2 and not (course.root / "gradebook.db").exists()
