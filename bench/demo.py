"""``make demo``: the whole TA job on the synthetic default, from a clean clone.

1. A fresh course directory (``demo_out/course``) gets the course config and the source notebooks.
2. ``release``: regenerate the release, train the reference once (QUICK mode), validate, scan for leaks.
3. A simulated class, packed as a Canvas "Download Submissions" zip:
     ada    the reference solution                         every automatic point
     ben    partial: correct code, but the checkpoint of the model without downsampling (mIoU ~0.15)
     cara   the untouched release                          no point, the run goes on
     dev    a notebook that raises before defining SegmentationModel
     eli    the reference solution, submitted a day late   every point, flagged late
     fay    the reference code without its checkpoint
   plus a stray file that matches no student.
   Assignment 2 (concepts): ada solves every topic, ben the first five, cara hands in the release.
4. ``collect`` → ``grade`` (2 parallel workers) → ``feedback`` for each, then ``export`` and the gradebook summary.
Along the way the trained reference is shown: its per-class IoU table, and its training curves, prediction grid
and per-class bars as PNG files in ``demo_out/``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

import nbformat

from autograder.errors import GraderError
from autograder.course import Course, run_nbgrader

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "segmentation_hw"
DUEDATE = "2026-12-01 23:59:00 UTC"
ON_TIME = "2026-12-01 20:15:00 UTC"
LATE = "2026-12-02 21:00:00 UTC"
STUDENTS = ("ada", "ben", "cara", "dev", "eli", "fay")
CANVAS_IDS = {s: (1000 + i, 5000 + i) for i, s in enumerate(STUDENTS)}
NAMES = {"ada": ("Ada", "Lovelace"), "ben": ("Ben", "Okafor"), "cara": ("Cara", "Lindqvist"),
         "dev": ("Dev", "Raman"), "eli": ("Eli", "Navarro"), "fay": ("Fay", "Kowalczyk")}
EXPECTED_POINTS = {  # automatic points out of 45 for the homework
    "ada": 45.0,  # the reference
    "ben": 30.0,  # code (10 + 10), parameters (5), table (3), answers (2), plus the tiers of the no-downsampling model
    "cara": 0.0,  # the untouched release
    "dev": 12.0,  # ResidualBlock (10) and answers (2); SegmentationModel never defined
    "eli": 45.0,  # the reference, late
    "fay": 22.0,  # code and answers; no checkpoint, so no parameter, table or tier points
}


def canvas_prefix(student: str) -> str:
    """What Canvas's "Download Submissions" puts before the ids: the sortable name "Last, First" squashed, lower case."""
    first, last = NAMES[student]
    return f"{last}{first}".lower()


def ben_tiers(course: "Course") -> list[str]:
    """The tiers ben's checkpoint (the model without downsampling) reaches: its QUICK figure lies near 0.15, so
    which side it falls on is the recipe's business; the grader must give exactly those tiers."""
    from course_lib.train.recipes import MIOU_TIERS

    results = course.root / "source" / ASSIGNMENT / f"{ASSIGNMENT}_nodown_results.json"
    miou = json.loads(results.read_text())["metrics"]["miou"]
    return [name for name, threshold in MIOU_TIERS.items() if miou >= threshold]


def expected_points(course: "Course") -> dict[str, float]:
    return {**EXPECTED_POINTS, "ben": EXPECTED_POINTS["ben"] + 5.0 * len(ben_tiers(course))}


def check_outcome(course: "Course", results: list[dict]) -> None:
    """The demo fails loudly when the grading went wrong (a sandbox that could not start scores everyone 0)."""
    got = {r["student"]: r["auto_points"] for r in results}
    want = expected_points(course)
    if got != want:
        wrong = {s: (got.get(s), want[s]) for s in want if got.get(s) != want[s]}
        raise GraderError(f"demo FAILED: automatic points (got, expected) {wrong}; statuses "
                         f"{ {r['student']: r['status'] for r in results} }; problems "
                         f"{ {r['student']: r['problems'] for r in results if r['problems']} }")


def new_course(target: Path) -> Course:
    if target.exists():
        shutil.rmtree(target)
    (target / "source").mkdir(parents=True)
    for name in ("nbgrader_config.py", "course.toml"):
        shutil.copy(REPO / name, target / name)
    for assignment in (ASSIGNMENT, CONCEPTS):
        shutil.copytree(REPO / "source" / assignment, target / "source" / assignment,
                        ignore=shutil.ignore_patterns("*.pt", "*_results.json", ".ipynb_checkpoints"))
    return Course(target.resolve())


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
    """Writes the simulated class as a Canvas-style zip; returns {student: expectation}."""
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


CONCEPTS = "segmentation_concepts"
CONCEPT_TOPICS = ("t1_panoptic", "t2_unet", "t3_roi_align", "t4_losses", "t5_atrous", "t6_metrics", "t7_sam",
                  "t8_upsampling", "t9_imbalance", "t10_segformer")


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


def set_duedate(course: Course, duedate: str = DUEDATE, assignment: str = ASSIGNMENT) -> None:
    proc = run_nbgrader(["db", "assignment", "add", assignment, f"--duedate={duedate}"], course.root, course.db_url)
    if proc.returncode != 0:
        raise GraderError(f"could not set the due date: {proc.stderr[-1000:]}")


def show_reference(course: Course, out: Path) -> None:
    """The trained reference on the validation split: per-class IoU table, curves and prediction grid as PNGs."""
    import torch

    from autograder.reference.segmentation_hw import SegmentationModel
    from course_lib import viz
    from course_lib.data import load_synthetic, normalize_images
    from course_lib.submission import load_submission
    from course_lib.train import evaluate
    from course_lib.train.recipes import QUICK

    submission = load_submission(SegmentationModel, course.root / "source" / ASSIGNMENT, ASSIGNMENT)
    val = load_synthetic("val")
    result = evaluate(submission.model, val, num_threads=QUICK.train.num_threads)
    print(f"\nreference on {val.name}: mIoU {result.miou:.4f}, pixel accuracy {result.pixel_accuracy:.4f}")
    print(f"{'class':18s} IoU")
    for name, iou in zip(val.class_names, result.iou_per_class):
        print(f"{name:18s} {iou:.3f}")
    out.mkdir(parents=True, exist_ok=True)
    if submission.history is not None:
        viz.plot_history(submission.history, out / "reference_curves.png")
    with torch.no_grad():
        preds = submission.model(normalize_images(val.images[:6])).argmax(1)
    viz.plot_predictions(val.images[:6], val.masks[:6], preds, val.palette, save_path=out / "reference_predictions.png")
    viz.plot_class_iou(result.iou_per_class, val.class_names, out / "reference_class_iou.png")
    print(f"wrote {out / 'reference_curves.png'}, {out / 'reference_predictions.png'}, {out / 'reference_class_iou.png'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Simulate a class and run the TA pipeline end to end.")
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from autograder.collect import collect
    from autograder.export import export, print_summary
    from autograder.feedback import feedback
    from autograder.pipeline import GradeOptions, grade
    from autograder.release import release

    clock = time.perf_counter()
    stamps = {}

    def step(name: str) -> None:
        stamps[name] = round(time.perf_counter() - clock, 1)
        print(f"\n=== {name} ({stamps[name]:.0f} s) ===", flush=True)

    step("release (trains the reference once)")
    course = new_course(args.out / "course")
    release(course, [ASSIGNMENT, CONCEPTS])
    for assignment in (ASSIGNMENT, CONCEPTS):
        set_duedate(course, assignment=assignment)
    show_reference(course, args.out)
    step("simulated classes → Canvas zips")
    zips = {ASSIGNMENT: args.out / "canvas_export_segmentation_hw.zip", CONCEPTS: args.out / "canvas_export_concepts.zip"}
    build_class(course, course.root / "source" / ASSIGNMENT, zips[ASSIGNMENT])
    build_concepts_class(course, zips[CONCEPTS])
    print("wrote", ", ".join(str(z) for z in zips.values()))
    step("roster: names, emails and Canvas ids into the gradebook")
    from autograder.roster import import_roster, read_roster

    import_roster(course.db_url, read_roster(write_roster(args.out / "canvas_roster.csv")))
    for assignment, zip_path in zips.items():
        step(f"{assignment}: collect")
        collect(course, assignment, zip_path)
        step(f"{assignment}: grade ({args.workers} workers)")
        results = grade(course, assignment, opts=GradeOptions(workers=args.workers))
        if assignment == ASSIGNMENT:
            check_outcome(course, results)
        step(f"{assignment}: feedback")
        feedback(course, assignment)
    step("export")
    summaries = export(course, [ASSIGNMENT, CONCEPTS])
    print_summary(course, summaries)
    step("done")
    (args.out / "timings.json").write_text(json.dumps(stamps, indent=2))


if __name__ == "__main__":
    try:
        main()
    except GraderError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
