"""The simulated classes of the test suite (and of ``make demo`` and the benchmarks, which reuse them): student
notebooks made from the release with the source's solutions, packed as Canvas packs them, a roster, and what each
student must get, said as the checks they fail (the points follow from the declaration).

The homework's class (``build_class``):
     ada    the reference solution                         every check
     ben    correct code, the checkpoint of the model without downsampling (mIoU near 0.15): the tiers above it fail
     cara   the untouched release                          no check
     dev    a notebook that raises before defining SegmentationModel
     eli    the reference solution, submitted a day late   every check, late
     fay    the reference code without its checkpoint
plus a stray file that matches no student. The concepts class (``build_concepts_class``): ada solves every topic,
ben the first five, cara hands in the release.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import nbformat

from autograder.checks import get_assignment
from autograder.checks.segmentation_concepts import TOPICS as CONCEPT_TOPICS
from autograder.course import Course

ASSIGNMENT = "segmentation_hw"
CONCEPTS = "segmentation_concepts"
DUEDATE = "2026-12-01 23:59:00 UTC"
ON_TIME = "2026-12-01 20:15:00 UTC"
LATE = "2026-12-02 21:00:00 UTC"
STUDENTS = ("ada", "ben", "cara", "dev", "eli", "fay")
CANVAS_IDS = {s: (1000 + i, 5000 + i) for i, s in enumerate(STUDENTS)}
NAMES = {"ada": ("Ada", "Lovelace"), "ben": ("Ben", "Okafor"), "cara": ("Cara", "Lindqvist"),
         "dev": ("Dev", "Raman"), "eli": ("Eli", "Navarro"), "fay": ("Fay", "Kowalczyk")}
TIERS = ("test_miou_target", "test_miou_good", "test_miou_excellent")
ON_DATA = {"test_parameter_count", "test_results_table", *TIERS}  # what needs the checkpoint


def ben_tiers(course: Course) -> list[str]:
    """The tiers ben's checkpoint (the model without downsampling) reaches: its QUICK figure lies near 0.15, so
    which side it falls on is the recipe's business; the grader must give exactly those tiers."""
    from course_lib.train.recipes import MIOU_TIERS

    results = course.root / "source" / ASSIGNMENT / f"{ASSIGNMENT}_nodown_results.json"
    miou = json.loads(results.read_text())["metrics"]["miou"]
    return [name for name, threshold in MIOU_TIERS.items() if miou >= threshold]


def expected_failures(course: Course) -> dict[str, set[str]]:
    """The homework checks each student of ``build_class`` fails."""
    every = set(get_assignment(ASSIGNMENT).checks)
    reached = ben_tiers(course)
    return {"ada": set(), "ben": {gid for gid in TIERS if gid.removeprefix("test_miou_") not in reached},
            "cara": every, "dev": {"test_segmentation_model"} | ON_DATA, "eli": set(), "fay": set(ON_DATA)}


def expected_concepts_failures() -> dict[str, set[str]]:
    """The concepts checks each student of ``build_concepts_class`` fails."""
    every = set(get_assignment(CONCEPTS).checks)
    return {"ada": set(), "ben": {f"test_{topic}" for topic in CONCEPT_TOPICS[5:]}, "cara": every}


def points_without(assignment: str, failed: set[str]) -> float:
    """The automatic points of a submission of ``assignment`` that fails exactly ``failed`` (all or nothing each):
    from the declaration (``Assignment.points``), never typed into a test."""
    return float(sum(points for gid, points in get_assignment(assignment).points.items() if gid not in failed))


def canvas_prefix(student: str) -> str:
    """What Canvas's "Download Submissions" puts before the ids: the sortable name "Last, First" squashed, lower case."""
    first, last = NAMES[student]
    return f"{last}{first}".lower()


def _cells(nb) -> dict:
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells if c.metadata.get("nbgrader")}


def student_notebook(course: Course, solved: set[str], answers: bool, table_from: dict | None,
                     assignment: str = ASSIGNMENT) -> nbformat.NotebookNode:
    """The release notebook with some graded cells filled in from the source, as a student would."""
    release = nbformat.read(course.root / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    source = _cells(nbformat.read(course.root / "source" / assignment / f"{assignment}.ipynb", as_version=4))
    mine = _cells(release)
    for gid in solved:
        mine[gid].source = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", "", source[gid].source, flags=re.M)
    if answers:
        for gid, cell in mine.items():
            if cell.cell_type == "markdown" and cell.metadata["nbgrader"].get("solution"):
                cell.source = source[gid].source
    if table_from is not None:
        from course_lib.submission import results_table

        mine["q1_results_table"].source = results_table(table_from)
    return release


def build_class(course: Course, artifacts: Path, out_zip: Path) -> dict:
    """Writes the homework's class as a Canvas "Download Submissions" zip (with ``timestamps.csv``) from the trained
    reference in ``artifacts``; returns the two models' metrics."""
    main = json.loads((artifacts / f"{ASSIGNMENT}_results.json").read_text())["metrics"]
    nodown = json.loads((artifacts / f"{ASSIGNMENT}_nodown_results.json").read_text())["metrics"]
    both = {"residual_block", "segmentation_model"}
    plans = {
        "ada": (student_notebook(course, both, True, main), "main", ON_TIME),
        "ben": (student_notebook(course, both, True, nodown), "nodown", ON_TIME),
        "cara": (student_notebook(course, set(), False, None), None, ON_TIME),
        "dev": (student_notebook(course, both, True, main), "main", ON_TIME),
        "eli": (student_notebook(course, both, True, main), "main", LATE),
        "fay": (student_notebook(course, both, True, main), None, ON_TIME),
    }
    broken = _cells(plans["dev"][0])["segmentation_model"]
    broken.source = 'raise RuntimeError("I ran out of time")\n\n' + broken.source
    timestamps = ["student_id,timestamp"]
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as archive:
        for student, (nb, weights, stamp) in plans.items():
            user, sub = CANVAS_IDS[student]
            late = "late_" if stamp == LATE else ""
            prefix = f"{canvas_prefix(student)}_{late}{user}_{sub}_"
            archive.writestr(prefix + f"{ASSIGNMENT}.ipynb", nbformat.writes(nb))
            if weights is not None:
                stem = ASSIGNMENT if weights == "main" else f"{ASSIGNMENT}_nodown"
                archive.write(artifacts / f"{stem}_checkpoint.pt", prefix + f"{ASSIGNMENT}_checkpoint.pt")
                archive.write(artifacts / f"{stem}_results.json", prefix + f"{ASSIGNMENT}_results.json")
                if weights == "main":  # the variant files are part of a complete submission
                    archive.write(artifacts / f"{ASSIGNMENT}_nodown_checkpoint.pt", prefix + f"{ASSIGNMENT}_nodown_checkpoint.pt")
                    archive.write(artifacts / f"{ASSIGNMENT}_nodown_results.json", prefix + f"{ASSIGNMENT}_nodown_results.json")
            timestamps.append(f"{student},{stamp}")
        archive.writestr("timestamps.csv", "\n".join(timestamps) + "\n")
        archive.writestr("readme_from_lms.txt", "a stray file that belongs to nobody")
    return {"main_metrics": main, "nodown_metrics": nodown}


def build_concepts_class(course: Course, out_zip: Path) -> None:
    """Assignment 2's class: ada solves everything, ben the first five topics, cara hands in the release."""
    plans = {"ada": student_notebook(course, set(CONCEPT_TOPICS), True, None, CONCEPTS),
             "ben": student_notebook(course, set(CONCEPT_TOPICS[:5]), True, None, CONCEPTS),
             "cara": student_notebook(course, set(), False, None, CONCEPTS)}
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as archive:
        for student, nb in plans.items():
            user, sub = CANVAS_IDS[student]
            archive.writestr(f"{canvas_prefix(student)}_{user}_{sub + 100}_{CONCEPTS}.ipynb", nbformat.writes(nb))
        archive.writestr("timestamps.csv", "student_id,timestamp\n" + "".join(f"{s},{ON_TIME}\n" for s in plans))


def write_roster(path: Path, with_ids: bool = True) -> Path:
    """The class as Canvas' gradebook export lists it (``Student`` as "Last, First", ``ID``, ``SIS User ID``,
    ``SIS Login ID``, ``Section``, the "Points Possible" row), plus the ``Email`` column of a people list;
    ``with_ids=False`` leaves the ``ID`` column empty (``collect`` records the ids from the zip's file names)."""
    lines = ["Student,ID,SIS User ID,SIS Login ID,Section,Email", "    Points Possible,,,,,"]
    for student in STUDENTS:
        first, last = NAMES[student]
        user = CANVAS_IDS[student][0] if with_ids else ""
        lines.append(f'"{last}, {first}",{user},{student},{student},CV-101,{student}@uni.example')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def concepts_class(target: Path, copies: int = 0, release_homework: bool = False) -> Course:
    """A course at ``target`` with ``segmentation_concepts`` released and its three students collected; ``copies``
    more students (``ada2``, ``ben2``, ``cara2``, ``ada3``...) hand in the same folders, for runs that need a longer
    queue; ``release_homework`` releases the homework too (no submissions; no training: ``generate_assignment``
    only). Uses the gradebook of ``$SEGMENTATION_GRADEBOOK_URL`` when set. (Tests on SQLite copy the session's
    ``released_concepts`` course instead: ``tests/conftest.py``.)"""
    from autograder.release import release

    course = Course.create(target / "course", [ASSIGNMENT, CONCEPTS])
    release(course, [CONCEPTS, ASSIGNMENT] if release_homework else [CONCEPTS], validate=False)
    collect_concepts(course, target / "concepts.zip", copies)
    return course


def collect_concepts(course: Course, zip_path: Path, copies: int = 0) -> None:
    """The concepts class into ``course`` through its Canvas zip (``collect``, after the roster it matches Canvas ids
    through), plus ``copies`` more students."""
    from autograder.collect import collect
    from autograder.roster import import_roster, read_roster

    build_concepts_class(course, zip_path)
    import_roster(course.db_url, read_roster(write_roster(zip_path.with_name("roster.csv"))), log=lambda *_: None)
    collect(course, CONCEPTS, zip_path, log=lambda *_: None)
    originals = ["ada", "ben", "cara"]
    for n in range(copies):
        name = originals[n % 3]
        shutil.copytree(course.root / "submitted" / name, course.root / "submitted" / f"{name}{2 + n // 3}")
