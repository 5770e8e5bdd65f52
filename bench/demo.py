"""``make demo``: the whole TA job on the synthetic default, from a clean clone.

1. A fresh course directory (``demo_out/course``) gets the course config and the source notebooks.
2. ``release``: regenerate the release, train the reference once (QUICK mode), validate, scan for leaks.
3. The test suite's simulated classes (``tests/classes.py``), packed as Canvas "Download Submissions" zips: six
   students of the homework (the reference, a partial one, the untouched release, a notebook that raises, a late one,
   one without a checkpoint) and a stray file; three of the concepts assignment.
4. ``roster``, then ``collect`` → ``grade`` (2 parallel workers) → ``feedback`` for each, then ``export`` and the
   gradebook summary. The demo fails loudly when a student's checks are not exactly the ones expected.
Along the way the trained reference is shown: its per-class IoU table, and its training curves, prediction grid
and per-class bars as PNG files in ``demo_out/``. Step times go to ``demo_out/timings.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import use_test_classes

use_test_classes()
from classes import (ASSIGNMENT, CONCEPTS, DUEDATE, build_class, build_concepts_class,  # noqa: E402
                     expected_concepts_failures, expected_failures, write_roster)

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

    clock = time.perf_counter()
    stamps = {}

    def step(name: str) -> None:
        stamps[name] = round(time.perf_counter() - clock, 1)
        print(f"\n=== {name} ({stamps[name]:.0f} s) ===", flush=True)

    step("release (trains the reference once)")
    course = Course.create(args.out / "course", [ASSIGNMENT, CONCEPTS])
    release(course, [ASSIGNMENT, CONCEPTS])
    for assignment in (ASSIGNMENT, CONCEPTS):
        course.set_duedate(assignment, DUEDATE)
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
        records = grade(course, assignment, opts=GradeOptions(workers=args.workers))
        check_outcome(records, expected_failures(course) if assignment == ASSIGNMENT else expected_concepts_failures())
        step(f"{assignment}: feedback (provisional: no TA has graded the written answers in formgrader)")
        feedback(course, assignment, provisional=True)
    step("export (provisional)")
    export(course, [ASSIGNMENT, CONCEPTS], provisional=True)
    print_summary(course, score_tables(course, [ASSIGNMENT, CONCEPTS]))
    step("done")
    (args.out / "timings.json").write_text(json.dumps(stamps, indent=2))


if __name__ == "__main__":
    try:
        main()
    except GraderError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
