"""``make demo``: the whole TA job on the synthetic default, from a clean clone.

1. A fresh course directory (``demo_out/course``) gets the course config and the source notebooks.
2. ``release``: regenerate the release, train the reference once (QUICK mode), validate, scan for leaks. Meanwhile a
   second process trains ben's and eli's own models (their implementations, their seeds; one thread, as QUICK
   trains, so they share the two cores with the reference), cached beside the similarity calibration's students.
3. The test suite's simulated classes (``tests/classes.py``), packed as Canvas "Download Submissions" zips: six
   students of the homework (the reference, a partial one, the untouched release, a notebook that raises, a late one,
   one without a checkpoint) and a stray file; three of the concepts assignment. The homework's class is made honest
   for the similarity report (``demo_class``): each student who hands in code writes it their own way
   (``bench/honest_students.py``), a checkpoint comes only from its owner's code (ada's is the reference); gus
   hands in a planted copy of ada's (``autograder.similarity.plant``: the notebook renamed and reformatted, the
   checkpoint copied).
4. ``roster``, then ``collect`` → ``grade`` (2 parallel workers) → ``feedback`` for each, ``similarity`` on the
   homework (it must name ada and gus and no one else), then ``export``, the gradebook summary and ``report`` (the
   class report). The demo fails loudly when a student's checks are not exactly the ones expected.
Along the way the trained reference is shown: its per-class IoU table, and its training curves, prediction grid
and per-class bars as PNG files in ``demo_out/``. Step times go to ``demo_out/timings.json``; the last lines say
where the similarity report and the class report are.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import nbformat
from common import use_test_classes

use_test_classes()
from classes import (ASSIGNMENT, CANVAS_IDS, CONCEPTS, DUEDATE, ON_TIME, TIERS, build_class,  # noqa: E402
                     build_concepts_class, canvas_prefix, expected_concepts_failures, expected_failures,
                     student_notebook, write_roster)
from honest_students import Student, honest_class  # noqa: E402
from honest_students import student_notebook as honest_notebook  # noqa: E402

from autograder.course import Course  # noqa: E402
from autograder.errors import GraderError  # noqa: E402


def check_outcome(records: list, expected: dict[str, set[str]]) -> None:
    """The demo fails loudly when the grading went wrong (a sandbox that could not start fails every check)."""
    wrong = {r.student: (sorted(r.failed), sorted(expected[r.student])) for r in records
             if r.failed != expected[r.student]}
    if wrong or {r.student for r in records} != set(expected):
        raise GraderError(f"demo FAILED: failed checks (got, expected) {wrong}; statuses "
                          f"{ {r.student: r.status for r in records} }; problems "
                          f"{ {r.student: r.notes for r in records if r.notes} }")


# Who writes the homework's code how (``honest_students.honest_class``): ada hands in the reference's own code.
HONEST_CODE = {"ben": "hand2", "dev": "s03", "eli": "hand1", "fay": "s04"}
# Who trains their own model (a checkpoint loads only into the code that made it), with which seed and whether with
# downsampling: eli the homework's model, ben the one without downsampling (mIoU near the target tier).
OWN_TRAINING = {"eli": (1001, True), "ben": (1002, False)}
COPIER = ("gus", "Gus", "Hopper", 1006, 5006)  # student id, first and last name, Canvas user and submission ids


def honest_students() -> dict[str, Student]:
    pool = {student.name: student for student in honest_class(5)}
    return {name: pool[code] for name, code in HONEST_CODE.items()}


def own_folder(student: str) -> Path:
    """Where ``train_own`` keeps the student's checkpoint and results file: the similarity calibration's cache, keyed
    by their code, seed, recipe and library (``similarity_calibration.training_key``) and the model's layout."""
    from similarity_calibration import cache_dir, training_key

    seed, downsample = OWN_TRAINING[student]
    return cache_dir() / (training_key(honest_students()[student], seed) + ("" if downsample else "-nodown"))


def train_own(student: str) -> str:
    """Trains the student's model as the notebook's training cell does (their code and seed, QUICK on one thread)
    and saves their submission with ``save_submission``; a cached training is not repeated."""
    import os
    import shutil
    import tempfile
    from dataclasses import replace

    import torch

    from course_lib.data import load_synthetic
    from course_lib.models import count_parameters
    from course_lib.submission import save_submission
    from course_lib.train import evaluate, fit, seed_everything
    from course_lib.train.recipes import QUICK
    from honest_students import namespace

    out, (seed, downsample) = own_folder(student), OWN_TRAINING[student]
    if (out / f"{ASSIGNMENT}_checkpoint.pt").is_file():
        return f"{student}: trained before ({out})"
    torch.set_num_threads(1)
    train, val = load_synthetic("train"), load_synthetic("val")
    kwargs = dict(QUICK.model_kwargs, num_classes=val.num_classes, downsample=downsample)
    seed_everything(seed)
    model = namespace(honest_students()[student])["SegmentationModel"](**kwargs)
    start = time.perf_counter()
    # no safety cap, as in the calibration: on a busy machine the same model, later (the cap stopped ben's at 256 s
    # per epoch while five other sessions ran)
    history = fit(model, train, val, replace(QUICK.train, seed=seed, progress=False, max_seconds=None), log=None)
    final = evaluate(model, val, num_threads=1)
    metrics = dict(miou=final.miou, pixel_accuracy=final.pixel_accuracy, num_parameters=count_parameters(model),
                   training_minutes=(time.perf_counter() - start) / 60)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.", dir=out.parent))
    save_submission(model, kwargs, metrics, tmp, ASSIGNMENT, history=history, data=val, mode="QUICK")
    if out.exists():  # another run finished it first
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, out)
    return f"{student}: mIoU {final.miou:.4f} in {metrics['training_minutes']:.1f} min"


def _with_code(nb, release: Path, student: Student):
    """``nb`` with the student's own code in its two code cells (under the release's docstrings)."""
    theirs = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in honest_notebook(release, student).cells}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in student.cells:
            cell.source = theirs[gid]
    return nb


def demo_class(course: Course, artifacts: Path, own: dict[str, Path], out_zip: Path) -> dict[str, set[str]]:
    """The homework's class of ``tests/classes.py`` made honest for the similarity report, plus one planted copy;
    written to ``out_zip`` as Canvas packs it. Returns the checks each student must fail.

    ben, dev, eli and fay write their code their own way (``HONEST_CODE``); ben and eli hand in their own training
    (``own``: student → the folder of ``train_own``); dev, whose notebook raises before the model exists, hands in no
    checkpoint (none can come from it); gus hands in ada's files, the notebook disguised and the checkpoint copied
    byte for byte. The tiers ben and eli must get follow from their own results files and the term's tiers."""
    from autograder.checks import get_assignment
    from autograder.similarity.plant import copied_hand_in
    from autograder.term import GradedSetting

    build_class(course, artifacts, out_zip)
    with zipfile.ZipFile(out_zip) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    release = course.root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    notebook, handed = f"{ASSIGNMENT}.ipynb", (f"{ASSIGNMENT}_checkpoint.pt", f"{ASSIGNMENT}_results.json")

    def files_of(student: str) -> dict[str, str]:
        """file name → entry name of the student's hand-in in the zip."""
        user, sub = CANVAS_IDS[student]
        return {name.split(f"{user}_{sub}_", 1)[1]: name for name in entries
                if name.startswith(canvas_prefix(student) + "_") and f"{user}_{sub}_" in name}

    def metrics(student: str) -> dict:
        return json.loads((own[student] / f"{ASSIGNMENT}_results.json").read_text())["metrics"]

    for student, code in honest_students().items():
        files = files_of(student)
        if student in own:
            nb = student_notebook(course, set(), True, metrics(student))
            for name in handed:
                entries[files[name]] = (own[student] / name).read_bytes()
        else:
            nb = nbformat.reads(entries[files[notebook]].decode(), as_version=4)
        nb = _with_code(nb, release, code)
        if student == "dev":  # as tests/classes.py breaks it
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "segmentation_model")
            cell.source = 'raise RuntimeError("I ran out of time")\n\n' + cell.source
        entries[files[notebook]] = nbformat.writes(nb).encode()
        keep = {notebook} if student == "dev" else {notebook, *handed} if student in own else set(files)
        for name, entry in files.items():
            if name not in keep:  # the reference's files they had been given
                del entries[entry]
    ada = {name: entries[entry] for name, entry in files_of("ada").items()}
    copier, first, last, user, sub = COPIER
    for name, data in copied_hand_in(ada, get_assignment(ASSIGNMENT), checkpoint="copy").items():
        entries[f"{last}{first}".lower() + f"_{user}_{sub}_{name}"] = data
    entries["timestamps.csv"] += f"{copier},{ON_TIME}\n".encode()
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)

    expected = expected_failures(course)
    tiers = GradedSetting.read(course.root).tiers.as_dict()
    for student in own:
        expected[student] = {gid for gid in TIERS if metrics(student)["miou"] < tiers[gid.removeprefix("test_miou_")]}
    expected[copier] = set(expected["ada"])
    return expected


def demo_roster(path: Path) -> Path:
    """The roster of ``tests/classes.py`` with the copier added, as Canvas lists them."""
    write_roster(path)
    student, first, last, user, _ = COPIER
    with path.open("a") as f:
        f.write(f'"{last}, {first}",{user},{student},{student},CV-101,{student}@uni.example\n')
    return path


def check_similarity(course: Course) -> Path:
    """``similarity`` on the homework: the planted pair must be reported, and no honest one."""
    from autograder.similarity import similarity

    analysis, page = similarity(course, ASSIGNMENT)
    reported = {(pair.a, pair.b): pair.reasons for pair in analysis.reported()}
    for (a, b), reasons in reported.items():
        print(f"  {a} / {b}: " + "; ".join(reasons))
    if set(reported) != {("ada", COPIER[0])}:
        raise GraderError(f"demo FAILED: the similarity report names {sorted(reported)}, expected only "
                          f"('ada', '{COPIER[0]}'): see {page}")
    return page


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
    from autograder.export import export, print_summary, score_tables
    from autograder.feedback import feedback
    from autograder.pipeline import GradeOptions, grade
    from autograder.release import release

    from autograder.report import class_report

    clock = time.perf_counter()
    stamps = {}

    def step(name: str) -> None:
        stamps[name] = round(time.perf_counter() - clock, 1)
        print(f"\n=== {name} ({stamps[name]:.0f} s) ===", flush=True)

    step("release (trains the reference once; ben and eli train their own models meanwhile)")
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:  # one thread, beside the reference's
        trainings = [pool.submit(train_own, student) for student in OWN_TRAINING]
        course = Course.create(args.out / "course", [ASSIGNMENT, CONCEPTS])
        release(course, [ASSIGNMENT, CONCEPTS])
        for assignment in (ASSIGNMENT, CONCEPTS):
            course.set_duedate(assignment, DUEDATE)
        show_reference(course, args.out)
        step("ben's and eli's own trainings")
        for training in trainings:
            print(training.result())
    step("simulated classes → Canvas zips")
    zips = {ASSIGNMENT: args.out / "canvas_export_segmentation_hw.zip", CONCEPTS: args.out / "canvas_export_concepts.zip"}
    own = {student: own_folder(student) for student in OWN_TRAINING}
    expected = {ASSIGNMENT: demo_class(course, course.root / "source" / ASSIGNMENT, own, zips[ASSIGNMENT]),
                CONCEPTS: expected_concepts_failures()}
    build_concepts_class(course, zips[CONCEPTS])
    print("wrote", ", ".join(str(z) for z in zips.values()))
    step("roster: names, emails and Canvas ids into the gradebook")
    from autograder.roster import import_roster, read_roster

    import_roster(course.db_url, read_roster(demo_roster(args.out / "canvas_roster.csv")))
    for assignment, zip_path in zips.items():
        step(f"{assignment}: collect")
        collect(course, assignment, zip_path)
        step(f"{assignment}: grade ({args.workers} workers)")
        records = grade(course, assignment, opts=GradeOptions(workers=args.workers))
        check_outcome(records, expected[assignment])
        step(f"{assignment}: feedback (provisional: no TA has graded the written answers in formgrader)")
        feedback(course, assignment, provisional=True)
    step(f"{ASSIGNMENT}: similarity")
    similarity_page = check_similarity(course)
    step("export (provisional)")
    export(course, [ASSIGNMENT, CONCEPTS], provisional=True)
    print_summary(course, score_tables(course, [ASSIGNMENT, CONCEPTS]))
    step("report")
    report_page = class_report(course)
    step("done")
    (args.out / "timings.json").write_text(json.dumps(stamps, indent=2))
    print(f"\nsimilarity report ({ASSIGNMENT}): {similarity_page.resolve()}")
    print(f"class report: {report_page.resolve()}")


if __name__ == "__main__":
    try:
        main()
    except GraderError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
