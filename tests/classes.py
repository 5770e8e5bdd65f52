"""A small graded class for the tests of the grading engines and gradebooks: the concepts assignment only (no
trained reference needed), released into a fresh course and collected from the demo's Canvas-style zip."""

from __future__ import annotations

import shutil
from pathlib import Path

from autograder.course import Course


def concepts_class(target: Path, copies: int = 0, release_homework: bool = False) -> Course:
    """A course at ``target`` with ``segmentation_concepts`` released and the demo's three students (ada solves
    everything, ben half, cara nothing) collected; ``copies`` more students (``ada2``, ``ben2``, ``cara2``,
    ``ada3``...) hand in the same folders, for runs that need a longer queue; ``release_homework`` releases the
    homework too (no submissions; no training: ``generate_assignment`` only). Uses the gradebook of
    ``$SEGMENTATION_GRADEBOOK_URL`` when set."""
    from autograder.collect import collect
    from autograder.demo import ASSIGNMENT, CONCEPTS, build_concepts_class, new_course, write_roster
    from autograder.release import release
    from autograder.roster import import_roster, read_roster

    course = new_course(target / "course")
    release(course, [CONCEPTS, ASSIGNMENT] if release_homework else [CONCEPTS], validate=False)
    build_concepts_class(course, target / "concepts.zip")
    import_roster(course.db_url, read_roster(write_roster(target / "roster.csv")), log=lambda *_: None)  # first
    collect(course, CONCEPTS, target / "concepts.zip")
    originals = ["ada", "ben", "cara"]
    for n in range(copies):
        name = originals[n % 3]
        shutil.copytree(course.root / "submitted" / name, course.root / "submitted" / f"{name}{2 + n // 3}")
    return course
