"""``bundle``: what students receive, built from ``release/`` and ``course_lib`` and nothing else.

    <out>/README.md                               install, this term's setting, each assignment with its due date
                                                  and its files to hand in
    <out>/environment.yml                         conda: Python 3.11, course_lib's dependencies and its wheel
    <out>/wheels/course_lib-<version>-py3-none-any.whl
    <out>/<assignment>/...                        each assignment's release folder
    <out>.zip                                     the same, one file to upload to the LMS

The wheel is built from a tree that holds only the root ``pyproject.toml``, ``course_lib/`` and the student
README, so nothing of the course repository (sources, grader, tests) can slip into it; it also carries the term's
announcement (``course_lib/_announced.py``: data set, size, mode, tiers, the packed file's name; nothing grader-only),
which the notebooks read through ``course_lib.term``. The README names the term's setting and tiers, the packed data
file students download from the LMS beside the bundle, how long QUICK takes (the one measured figure,
``course_lib.train.recipes.QUICK.minutes``) and how to train on a GPU (a hosted notebook service or a university
cluster); it lists each assignment in one line (its notebook's title and its due date from the gradebook, which
``nbgrader db assignment add ... --duedate`` sets) and the files to upload one by one. Before the zip is written
the bundle is checked (``bundle_leaks``): no solution region, model answer or hidden test of any source notebook,
no line of a reference solution, no grader module, checkpoint or gradebook, and not the term's secret; a bundle
that fails is refused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from datetime import datetime
from pathlib import Path

import nbformat

from autograder.checks import get_assignment
from autograder.config import REPO
from autograder.course import Course
from autograder.errors import GraderError
from autograder.leaks import MIN_LENGTH, scan, secret_lines
from autograder.term import GradedSetting, stored_secret
from course_lib.term import Announcement
from course_lib.train.recipes import QUICK, get_recipe

FORBIDDEN_NAMES = ("autograder", "term_secret", "gradebook", ".pt", "_results.json", "/source/", "hidden")

README = """# {title}: what you need

This folder is everything you need for the course's assignments: the notebooks, the course library
(`course_lib`) as a wheel, and an environment file.

## Install (once)

With Python 3.11 and pip (a virtual environment keeps it apart from your other projects):

```bash
python3.11 -m venv .venv && source .venv/bin/activate
pip install {wheel_path}        # course_lib and its dependencies (PyTorch: about 5 GB the first time)
python -m course_lib.student_setup   # in this folder, once: JupyterLab shows your tools only (Validate), and
                                     # the notebooks open without "unsaved changes"
```

or with conda: `conda env create -f environment.yml && conda activate segmentation-student`, then
`python -m course_lib.student_setup`. Notebooks come from and go back to the LMS: nbgrader's assignment list is not
used in this course, and the set-up step turns it off.

## Work

```bash
jupyter lab {first_notebook}
```

{setting_line}

{tiers_line}

Run the cells from the top. While developing, keep `MODE = "QUICK"`; the homework's QUICK training takes
{quick_time}. Each notebook says at the top what is graded, for how many points, and how long it takes. Check your
work with the visible test cells and with the Validate button; save the notebook (Ctrl+S) before the cells that read
the saved file (the results-table checks and the last cells).

## Assignments

{assignments}

{gpu_section}

## Hand in

Upload each file on its own to the assignment on the LMS (in Canvas: the "File Upload" tab, then "Add Another
File" for each next one), unchanged and unrenamed:

{hand_in}

The grader rebuilds your model from the checkpoints, evaluates it on its own data and reads your written answers
from the notebook, each file by its name: a renamed file is not graded. Upload the files themselves (a `.zip` of
exactly these files is unpacked too; other archives, such as `.tar` or `.7z`, are not collected). Uploading a file
again is fine: the newest upload of each file counts.
"""


def _size(setting: GradedSetting) -> str:
    height, width = setting.image_size
    return f"{height}" if height == width else f"({height}, {width})"


def _data_line(announced: Announcement, folder: str) -> str:
    """What to write as ``DATA`` when the term's file sits in ``folder``."""
    if announced.data == "synthetic":
        return '"synthetic"'
    if announced.data_file:
        return f'"{announced.data_spec(folder)}"'
    return f'"{announced.data}:<the folder holding the data>"'


def _setting_line(setting: GradedSetting) -> str:
    height, width = setting.image_size
    announced = setting.announcement()
    download = (f" The data is one file, `{announced.data_file}`: download it from the LMS beside this bundle (keep "
                "it out of your hand-in)." if announced.data_file else "")
    return (f"**This term** grades the homework in {setting.mode} mode on {setting.data.kind} data at {height}x{width}: "
            f"before your final training run set `MODE = \"{setting.mode}\"`, "
            f"`DATA = {_data_line(announced, '~/data')}` and `IMAGE_SIZE = {_size(setting)}` in the notebook's first "
            f"code cell.{download}")


def _tiers_line(setting: GradedSetting) -> str:
    return (f"**Tiers** (5 points each), on the validation mIoU the grader recomputes from your checkpoint: "
            f"{setting.tiers.describe()}.")


GPU_SECTION = """## Training on a GPU

This term's {mode} recipe trains two models for {epochs} epochs each. Time: {minutes}. On a laptop's CPU a GPU
recipe takes many hours: the notebook's set-up cell prints the device it will train on and, in FULL mode on a machine
without a GPU, says how long training would take there and stops unless you set `INSIST = True` in the first cell.
Any machine with an NVIDIA GPU works. You need {files}: the wheel is in this bundle's `wheels/` folder, the data
file is on the LMS ({data_file}).

**On a hosted notebook service** (Google Colab, Kaggle):

1. Open the notebook. Colab: File → Upload notebook, then Runtime → Change runtime type → a GPU. Kaggle: Create →
   New Notebook, File → Import Notebook, then Settings → Accelerator → a GPU.
2. Upload the wheel and the data file. Colab: the Files pane (folder icon) → Upload; they land in `/content`.
   Kaggle: Add Input → Upload → a private data set holding both; it appears under `/kaggle/input/<its name>/`.
3. Install, in a new cell at the top: `!pip install -q /content/{wheel}` (Kaggle:
   `!pip install -q /kaggle/input/<its name>/{wheel}`). These services already have PyTorch; pip keeps it.
4. In the first code cell: `MODE = "{mode}"`, `DATA = {data_colab}` (Kaggle: `DATA = {data_kaggle}`),
   `IMAGE_SIZE = {size}`.
5. Run all cells. The files to hand in are written to the working folder: `/content` on Colab (Files pane → ⋮ →
   Download), `/kaggle/working` on Kaggle (the Output panel). Download them and the notebook (File → Download
   .ipynb) as soon as training ends: a hosted session ends after a time limit and its files go with it.

**On a university cluster** (Slurm; your site's partition, account and module names differ):

```bash
# once, on a login node, in this unpacked bundle
python3.11 -m venv ~/seg-venv && source ~/seg-venv/bin/activate
pip install wheels/{wheel} && python -m course_lib.student_setup
# copy the data file to your home or scratch folder; then JupyterLab on a GPU node for two hours
srun --partition=gpu --gres=gpu:1 --time=02:00:00 --pty bash -c \\
    'source ~/seg-venv/bin/activate && jupyter lab --no-browser --ip=$(hostname) --port=8888'
# on your own computer: a tunnel to the node it names, then open http://localhost:8888 with the token it printed
ssh -N -L 8888:<node>:8888 <you>@<login node>
```

Set `MODE`, `DATA` (the data file's path on the cluster) and `IMAGE_SIZE` as above; the files to hand in appear next
to the notebook. Copy them back (`scp`) and upload them to the LMS."""


def _gpu_section(setting: GradedSetting, wheel_name: str, notebook: str) -> str:
    """The README's "Training on a GPU": a hosted notebook service and a university cluster."""
    recipe = get_recipe(setting.mode)
    announced = setting.announcement()
    files = f"`{wheel_name}`, `{notebook}`" + (f" and `{announced.data_file}`" if announced.data_file else "")
    return GPU_SECTION.format(
        mode=setting.mode, epochs=recipe.train.num_epochs, minutes=recipe.minutes, files=files, wheel=wheel_name,
        data_file=f"`{announced.data_file}`" if announced.data_file else "none this term: the data is generated",
        data_colab=_data_line(announced, "/content"), data_kaggle=_data_line(announced, "/kaggle/input/<its name>"),
        size=_size(setting))


def _hand_in_files(name: str) -> list[str]:
    """What a student uploads for an assignment: the notebook, and each checkpoint it saves with its results file."""
    spec = get_assignment(name)
    files = [spec.notebook]
    for checkpoint in spec.reference_artifacts:
        files += [checkpoint, checkpoint.replace("_checkpoint.pt", "_results.json")]
    return files


def _hand_in(assignments: list[str]) -> str:
    """Per assignment, each file to upload on a line of its own."""
    lines = []
    for name in assignments:
        files = _hand_in_files(name)
        lines.append(f"- **{name}** ({len(files)} file{'s' if len(files) > 1 else ''}):")
        lines += [f"  - `{f}`" for f in files]
    return "\n".join(lines)


def due_dates(course: Course, assignments: list[str]) -> dict[str, datetime | None]:
    """Each assignment's due date in the course's gradebook (nbgrader's, in UTC), ``None`` when none is set. A
    course without a gradebook yet has none (no gradebook is created here)."""
    from nbgrader.api import Gradebook, MissingEntry

    url = course.db_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return dict.fromkeys(assignments)
    dates = {}
    with Gradebook(url) as gb:
        for name in assignments:
            try:
                dates[name] = gb.find_assignment(name).duedate
            except MissingEntry:
                dates[name] = None
    return dates


def _title(course: Course, name: str) -> str:
    """The assignment's notebook title: its first Markdown heading (``# Homework: ...``)."""
    notebook = course.root / "release" / name / get_assignment(name).notebook
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            heading = next((line.lstrip("#").strip() for line in cell.source.splitlines() if line.startswith("# ")), None)
            if heading:
                return heading
    return name


def _assignments(course: Course, assignments: list[str]) -> str:
    """One line per assignment: its folder, what it is, its due date (or that none is set)."""
    dates = due_dates(course, assignments)
    lines = []
    for name in assignments:
        due = dates[name]
        when = f"due {due:%Y-%m-%d %H:%M} UTC" if due is not None else "no due date set (the LMS shows it when there is one)"
        lines.append(f"- `{name}/{get_assignment(name).notebook}`: {_title(course, name)}; {when}.")
    return "\n".join(lines)


def _student_requirements() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


ANNOUNCED_MODULE = ('"""What this term announces: written by the student bundle (``autograder.bundle``), read by '
                    '``course_lib.term``."""\n\nANNOUNCED = {announced!r}\n')


def build_wheel(out: Path, announced: Announcement | None = None) -> Path:
    """The ``course_lib`` wheel, built from a tree holding only ``pyproject.toml``, ``course_lib/`` and a README; with
    ``announced``, it carries the term's announcement as ``course_lib/_announced.py``."""
    with tempfile.TemporaryDirectory(prefix="course-lib-wheel-") as tmp:
        tree = Path(tmp) / "course-lib"
        shutil.copytree(REPO / "course_lib", tree / "course_lib",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_announced.py"))
        if announced is not None:
            (tree / "course_lib" / "_announced.py").write_text(ANNOUNCED_MODULE.format(announced=announced.to_dict()))
        shutil.copy(REPO / "pyproject.toml", tree / "pyproject.toml")
        (tree / "README.md").write_text("course_lib: the library of the image-segmentation course.\n")
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                               "-w", str(out), str(tree)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise GraderError(f"could not build the course_lib wheel: {proc.stderr.strip()[-800:]}")
    (wheel,) = out.glob("course_lib-*.whl")
    return wheel


def bundle_leaks(folder: Path, course: Course, assignments: list[str]) -> list[str]:
    """Everything in ``folder`` (the wheel unpacked too) that students must not get, as ``"path: what"`` lines."""
    found = []
    with tempfile.TemporaryDirectory(prefix="bundle-scan-") as tmp:
        unpacked = Path(tmp)
        for wheel in folder.rglob("*.whl"):
            zipfile.ZipFile(wheel).extractall(unpacked / wheel.stem)
        files = [p for root in (folder, unpacked) for p in root.rglob("*") if p.is_file()]
        found += [f"{p}: a grader-only file name" for p in files
                  if any(bad in "/" + p.relative_to(unpacked if p.is_relative_to(unpacked) else folder).as_posix()
                         for bad in FORBIDDEN_NAMES)]
        secrets = set()
        for name in assignments:
            secrets |= secret_lines(course.root / "source" / name / get_assignment(name).notebook)
        public = {line.strip() for name in assignments for line in _notebook_lines(folder / name / get_assignment(name).notebook)}
        for reference in (REPO / "autograder" / "reference").glob("*.py"):  # its lines the release does not show
            secrets |= {line.strip() for line in reference.read_text().splitlines()
                        if len(line.strip()) >= MIN_LENGTH and line.strip() not in public
                        and not line.strip().startswith(("import ", "from ", "#"))}
        found += scan([folder, unpacked], secrets)
        term = stored_secret(course.root)
        if term:
            found += [f"{p}: the term's secret" for p in [*files, *folder.rglob("*.zip")] if term.encode() in p.read_bytes()]
    return found


def _notebook_lines(path: Path) -> list[str]:
    return [line for cell in nbformat.read(path, as_version=4).cells for line in cell.source.splitlines()]


def build_bundle(course: Course, out: Path | None = None, assignments: list[str] | None = None, log=print) -> Path:
    """Writes the student bundle to ``out`` (default ``<course>/student_bundle``) and ``out.zip``; returns the zip.

    Raises:
        GraderError: an assignment has no release, or the bundle holds something students must not get.
    """
    assignments = assignments or course.assignments()
    out = Path(out or course.root / "student_bundle").resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in assignments:
        release = course.root / "release" / name
        if not (release / get_assignment(name).notebook).is_file():
            raise GraderError(f"{release} has no notebook: run `python -m autograder release` first")
        shutil.copytree(release, out / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    setting = GradedSetting.read(course.root)
    wheel = build_wheel(out / "wheels", setting.announcement())
    wheel_path = f"wheels/{wheel.name}"
    first_notebook = f"{assignments[0]}/{get_assignment(assignments[0]).notebook}"
    (out / "README.md").write_text(README.format(
        title="Image segmentation", wheel_path=wheel_path, first_notebook=first_notebook,
        setting_line=_setting_line(setting), tiers_line=_tiers_line(setting), quick_time=QUICK.minutes,
        assignments=_assignments(course, assignments),
        gpu_section=_gpu_section(setting, wheel.name, get_assignment(assignments[0]).notebook),
        hand_in=_hand_in(assignments)))
    (out / "environment.yml").write_text(
        "# conda env create -f environment.yml && conda activate segmentation-student\n"
        "name: segmentation-student\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
        + "".join(f"      - {req}\n" for req in _student_requirements()) + f"      - ./{wheel_path}\n")
    leaks = bundle_leaks(out, course, assignments)
    if leaks:
        raise GraderError("student bundle REFUSED, it holds grader-only material:\n  " + "\n  ".join(leaks[:10]))
    archive = Path(shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name))
    log(f"student bundle: {out} and {archive} ({archive.stat().st_size / 1e6:.2f} MB): "
        f"{', '.join(assignments)}, {wheel.name}; no solution, model answer, hidden test, reference, grader file "
        "or term secret in it")
    _say_what_else_to_upload(setting, log)
    return archive


def _say_what_else_to_upload(setting: GradedSetting, log) -> None:
    """The term's data file goes to the LMS beside the bundle (its README names it); a VOC folder should be packed."""
    location = setting.data.location
    if location is None:
        return
    if location.is_file():
        log(f"upload the term's data file too: {location} ({location.stat().st_size / 1e6:,.1f} MB), named "
            f"{location.name} as the bundle's README says")
    elif setting.data.kind == "voc":
        log(f"the term's data is a VOC folder ({location}): students would need the whole data set. Pack it once "
            f"(python -m course_lib.data pack voc {location} --size {setting.image_size[0]} --out voc"
            f"{setting.image_size[0]}.npz), declare the file in course.toml and build the bundle again")
