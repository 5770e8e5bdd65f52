"""``python -m autograder similarity ASSIGNMENT``: evidence of copying between every pair of students, for a human
to judge. Nothing here changes a grade.

    code.py         the students' own code cells: winnowing fingerprints (copydetect), the handout as boilerplate
    checkpoints.py  the checkpoint files: what the archive records, the same tensors, weights a fine-tuning apart
    report.py       one HTML page (pairs ranked, side by side, matching code highlighted, plots) and a CSV
    thresholds.json the calibrated thresholds and the honest distributions they come from
                    (``bench/similarity_calibration.py``)
    plant.py        planted copies for the demo and the tests

A pair is reported only on evidence computed from both students' files: one of its scores is above every honest
pair of the calibration class by the stated margin, or the two files share what only one save or one training run
can make (the same bytes, the same serialization id (a digest of the saved content), the same recorded training
times). The name a checkpoint was first saved under (the archive's inner folder) is a claim its submitter controls:
a name that contains a classmate's login is a note on the submitter's own file, and it, or two files first saved
under the same unusual name, is shown beside a pair reported on evidence, never a reason to report one. Every
reported pair shows where each score stands among the honest pairs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autograder.course import Course
from autograder.errors import GraderError
from autograder.similarity import checkpoints as ck
from autograder.similarity import code as cd

THRESHOLDS = Path(__file__).with_name("thresholds.json")
SCORES = ("code", "identical", "layers")  # the calibrated scores, in the order the report shows them
SCORE_NAMES = {"code": "shared code (share of the smaller submission's fingerprints)",
               "identical": "identical values (share of the smaller model's magnitudes, bit for bit, any sign or order)",
               "layers": "weight correlation (median over layers, as stored or up to channel signs and order)"}


# Measured (bench/similarity_calibration.py --same-seed-probe, bench/results/similarity_same_seed_probe_cpu.json):
# the release notebook seeds every training with the recipe's seed 0, and every honest implementation of the
# specified layout draws the same initial weights (8 of 8); after 25 QUICK steps they fall into 4 groups that are
# bit for bit the same (the same arithmetic: F.interpolate by size or by scale factor tells them apart), and the
# pairs apart still correlate 0.84 to 0.997. Weights alone are evidence only between trainings that started apart.
SAME_SEED_CAVEAT = ("the checkpoints share no file, save or training run: two students whose code does the same "
                    "arithmetic train the same weights from the release notebook's fixed seed (seed_everything(0)), "
                    "so compare the code before concluding")


def load_thresholds(path: Path = THRESHOLDS) -> dict:
    """``{"scores": {score: {"threshold", "honest": [...], ...}}, "margin": ..., "source": ...}``."""
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise GraderError(f"cannot read the similarity thresholds {path}: {err}; re-run "
                          "bench/similarity_calibration.py --write-thresholds") from err
    missing = [s for s in SCORES if s not in table.get("scores", {})]
    if missing:
        raise GraderError(f"{path} has no threshold for {missing}; re-run bench/similarity_calibration.py "
                          "--write-thresholds")
    return table


def percentile(value: float, honest: list[float]) -> float:
    """The share (in %) of honest pairs scoring strictly below ``value``."""
    return 100.0 * float(np.mean(np.asarray(honest) < value)) if honest else float("nan")


@dataclass
class Student:
    """What was read of one student's submission; ``notes`` says what could not be, and what the student's own files
    claim (a checkpoint first saved under classmates' names)."""

    name: str
    code: cd.CodeFingerprint | None = None
    checkpoint: ck.CheckpointPrint | None = None
    checkpoint_path: Path | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Pair:
    """The evidence between two students. ``reasons`` is empty for a pair that is not reported; ``remarks`` are what
    the files' names claim, shown beside the evidence and never a reason."""

    a: str
    b: str
    scores: dict[str, float]
    facts: list[str]
    reasons: list[str]
    remarks: list[str] = field(default_factory=list)
    code_match: cd.CodeMatch | None = None
    layers: list[dict] = field(default_factory=list)
    thresholds_used: dict = field(default_factory=dict, repr=False)

    @property
    def reported(self) -> bool:
        return bool(self.reasons)

    @property
    def rank_key(self) -> tuple:
        """File facts first (the strongest evidence), then how far a score lies above its threshold."""
        exceed = max((self.scores[s] - self.thresholds_used.get(s, 1.0) for s in SCORES), default=0.0)
        return (-len(self.facts), -exceed, self.a, self.b)


@dataclass
class Analysis:
    """Every pair's scores (matrices in ``students`` order) and the pairs worth showing, ranked."""

    assignment: str
    students: list[Student]
    matrices: dict[str, np.ndarray]
    pairs: list[Pair]
    thresholds: dict

    def reported(self) -> list[Pair]:
        return [p for p in self.pairs if p.reported]


def read_student(course: Course, assignment, name: str, boilerplate: np.ndarray) -> Student:
    """One student's code cells and checkpoint summary; a broken file becomes a note, never an exception."""
    from autograder.notebook import SubmissionError, first_cells_by_id, read_notebook

    folder = course.root / "submitted" / name / assignment.name
    student = Student(name)
    try:
        nb = read_notebook(folder / assignment.notebook)
        cells = first_cells_by_id(nb)
        own = {gid: cells[gid].source for gid in assignment.code_cells if gid in cells}
        if not own:
            student.notes.append("none of the graded code cells is in the notebook")
        student.code = cd.fingerprint(own, boilerplate)
    except SubmissionError as err:
        student.notes.append(str(err))
    if assignment.checkpoint:
        path = folder / assignment.checkpoint
        results = folder / assignment.results_file if assignment.results_file else None
        student.checkpoint = ck.fingerprint_checkpoint(path, results)
        student.checkpoint_path = path if student.checkpoint.ok else None
        if not student.checkpoint.ok:
            student.notes.append(student.checkpoint.error)
    return student


def release_code(course: Course, assignment) -> list[str]:
    """The source of every code cell of the release notebook: what everyone received."""
    from autograder.notebook import SubmissionError, read_notebook

    path = course.root / "release" / assignment.name / assignment.notebook
    try:
        nb = read_notebook(path)
    except SubmissionError as err:
        raise GraderError(f"the release notebook {path} cannot be read ({err}); run `python -m autograder release` "
                          "first: its code is what every student received, never evidence") from err
    return [c.source for c in nb.cells if c.cell_type == "code"]


def standard_inner_names(assignment) -> set[str]:
    """Inner archive names an honest checkpoint has: ``save_submission`` writes ``<name>.tmp`` then renames it
    (inner name ``<name>``); ``torch.save`` straight to the file gives its stem; an in-memory save ``archive``."""
    name = assignment.checkpoint or ""
    return {name, Path(name).stem, "archive", ""}


def analyse(course: Course, assignment_name: str, thresholds: dict | None = None) -> Analysis:
    """Scores every pair of students who handed in ``assignment_name`` and collects the evidence of those worth
    showing (reported, or sharing any fact)."""
    from autograder.checks import get_assignment

    assignment = get_assignment(assignment_name)
    thresholds = thresholds or load_thresholds()
    names = course.submitted(assignment_name)
    if len(names) < 2:
        raise GraderError(f"{len(names)} student(s) handed in {assignment_name} under {course.root / 'submitted'}: "
                          "a comparison needs two; run `python -m autograder collect` first")
    boilerplate = cd.boilerplate_hashes(release_code(course, assignment))
    students = [read_student(course, assignment, name, boilerplate) for name in names]
    empty = cd.CodeFingerprint("", "", np.zeros((0, 2)), set(), {}, 0.0)
    shared, sizes = cd.shared_fingerprints([s.code or empty for s in students])
    prints = [s.checkpoint if s.checkpoint is not None and s.checkpoint.ok else ck.CheckpointPrint(error="none")
              for s in students]
    matrices = {"code": cd.containment(shared, sizes), "identical": ck.identical_share(prints),
                "layers": ck.layer_correlation(prints)}
    facts = _fact_matrix(prints)
    remarks = _name_remarks(prints, names, standard_inner_names(assignment), students)
    limits = {s: thresholds["scores"][s]["threshold"] for s in SCORES}
    show = np.zeros((len(names), len(names)), dtype=bool)
    for score in SCORES:
        show |= matrices[score] >= limits[score]
    for i, j in facts:
        show[i, j] = show[j, i] = True
    pairs = []
    for i, j in zip(*np.nonzero(np.triu(show, 1))):
        pairs.append(_pair(students[i], students[j], {s: float(matrices[s][i, j]) for s in SCORES},
                           facts.get((i, j), []), thresholds, remarks.get((i, j), [])))
    pairs.sort(key=lambda p: p.rank_key)
    return Analysis(assignment_name, students, matrices, pairs, thresholds)


# What two checkpoint files can share that only one save or one training run makes: (value of a file, what it says).
FILE_FACTS = [
    (lambda fp: fp.sha256, lambda v: "the same checkpoint file, byte for byte"),
    (lambda fp: fp.serialization_id,
     lambda v: f"the same saved content: both archives carry serialization id {v}, torch's digest of everything a "
               "torch.save wrote (tensors and metadata, whatever the file's name)"),
    (lambda fp: fp.training_run,
     lambda v: "the same training run: identical training minutes and per-epoch seconds in the checkpoint and "
               "results file"),
]


def _fact_matrix(prints: list[ck.CheckpointPrint]) -> dict:
    """(i, j) with i < j → what the two checkpoint files share that only one save or one training makes, found
    through indexes of each fact's value (never a loop over all pairs)."""
    facts: dict[tuple[int, int], list[str]] = {}
    for value_of, say in FILE_FACTS:
        for (i, j), value in _same_value(prints, value_of):
            facts.setdefault((i, j), []).append(say(value))
    return facts


def _same_value(prints: list[ck.CheckpointPrint], value_of) -> list[tuple[tuple[int, int], str]]:
    """Every pair (i < j) of readable checkpoints whose ``value_of`` is the same non-empty value."""
    owners: dict[str, list[int]] = {}
    for i, fp in enumerate(prints):
        value = value_of(fp)
        if fp.ok and value:
            owners.setdefault(value, []).append(i)
    return [((who[x], who[y]), value) for value, who in owners.items()
            for x in range(len(who)) for y in range(x + 1, len(who))]


def _name_remarks(prints: list[ck.CheckpointPrint], names: list[str], standard: set[str],
                  students: list[Student]) -> dict:
    """The inner archive names, which only their submitter chose: a name that contains classmates' logins becomes a
    note on the submitter's own file (``students[i].notes``), and (i, j) → remarks for pairs shown on evidence."""
    remarks: dict[tuple[int, int], list[str]] = {}
    for (i, j), value in _same_value(prints, lambda fp: fp.inner_name if fp.inner_name not in standard else ""):
        remarks.setdefault((i, j), []).append(f"both checkpoints were first saved as '{value}' (the archive's inner "
                                              "folder), not as the hand-in name")
    for i, fp in enumerate(prints):
        if not fp.ok or fp.inner_name in standard:
            continue
        named = [j for j, other in enumerate(names) if j != i and len(other) >= 3
                 and other.lower() in fp.inner_name.lower()]
        if named:
            students[i].notes.append(
                f"the checkpoint was first saved as '{fp.inner_name}', a name that contains "
                f"{', '.join(names[j] for j in named)}: the submitter's own choice of name, no evidence about "
                f"{'them' if len(named) > 1 else names[named[0]]} unless their files share a score or a fact")
        for j in named:
            remarks.setdefault((min(i, j), max(i, j)), []).append(
                f"{names[i]}'s checkpoint was first saved as '{fp.inner_name}', a name that contains {names[j]} "
                f"(a claim of {names[i]}'s file alone)")
    return remarks


def _pair(a: Student, b: Student, scores: dict, facts: list[str], thresholds: dict,
          remarks: list[str] | None = None) -> Pair:
    reasons = list(facts)
    for score in SCORES:
        entry = thresholds["scores"][score]
        if scores[score] >= entry["threshold"]:
            reasons.append(f"{SCORE_NAMES[score]} {scores[score]:.3f}: above every honest pair of the calibration "
                           f"class (highest {max(entry['honest']):.3f}; reported from {entry['threshold']:.3f})")
    if not facts and any(scores[s] >= thresholds["scores"][s]["threshold"] for s in ("identical", "layers")):
        reasons.append(SAME_SEED_CAVEAT)
    pair = Pair(a.name, b.name, scores, facts, reasons, remarks or [],
                thresholds_used={s: thresholds["scores"][s]["threshold"] for s in SCORES})
    if a.code is not None and b.code is not None and a.code.hashes and b.code.hashes:
        pair.code_match = cd.compare(a.code, b.code)
    if a.checkpoint_path is not None and b.checkpoint_path is not None:
        pair.layers = ck.per_layer(a.checkpoint_path, b.checkpoint_path)
    return pair


def similarity(course: Course, assignment: str, out: Path | None = None) -> tuple[Analysis, Path]:
    """``python -m autograder similarity``: analyses the class and writes the report and CSV; returns both."""
    from autograder.similarity.report import write_report

    analysis = analyse(course, assignment)
    folder = out or course.root / "grading" / "similarity" / assignment
    html = write_report(analysis, folder)
    return analysis, html
