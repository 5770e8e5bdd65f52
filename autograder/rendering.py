"""The executed-notebook view of a graded submission, made by ``nbgrader autograde`` without executing anything.

The judge (``autograder.judge``) is the one grader and the record (``autograder.records``) holds what it decided.
nbgrader's autograde then does what it is good at, through its API, with its own preprocessors and the course's
configuration, and executes nothing:

- sanitising: ``WithoutSurrogates`` and ``PlainGradingMetadata`` (ours), ``DeduplicateIds``, ``OverwriteKernelspec``, ``OverwriteCells`` (the
  instructor's test and locked cells replace whatever the student left there), ``CheckCellMetadata``;
- rendering: ``ClearHiddenTests`` (the hidden-test delimiters of ``nbgrader_config.py``), ``LimitOutput``,
  ``CapOutputs`` (characters, for the one-line outputs ``LimitOutput`` lets through), ``JudgeOutputs``,
  ``WrittenAnswers``, ``AssignLatePenalties``, ``CheckCellMetadata``, ``GraderSummary`` (the last three ours, below).

Ours only change the notebook: they receive the student's record in memory and write no score. The gradebook's
automatic scores are written by ``RecordStore.save`` alone; ``WrittenAnswers`` only reads which written answers the
student changed (nbgrader's own rule, ``nbgrader.utils.determine_grade``) for it. What this relies on in nbgrader is
pinned by ``tests/test_rendering.py`` on a toy course.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.nbgraderformat import SCHEMA_VERSION
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import determine_grade, is_grade, is_solution
from traitlets import Integer

from autograder.course import Course, nbgrader_config
from autograder.gradebook import release_cell_ids
from autograder.late import LatePolicy, read_policy, summary_lines
from autograder.records import GradingRecord, WrittenAnswer

MAX_OUTPUT_CHARS = 20_000  # per text output (what TAs and students see)
MAX_COPIED_FILE_BYTES = 100 * 1024**2  # larger submitted files stay out of autograded/ (the record says so)
NO_CHECK = "no automatic check covers this cell; a TA will grade it"


def verdict_text(grade_id: str, points: float, max_points: float, message: str) -> str:
    """The one line a graded cell shows: name, result, points and the check's message (one clause per part)."""
    word = "PASSED" if points >= max_points else "PARTIAL" if points > 0 else "FAILED"
    return f"[grader] {grade_id}: {word} ({points:g}/{max_points:g} points) - {message}\n"


class WithoutSurrogates(NbGraderPreprocessor):
    """Lone surrogates in the submitted notebook (a ``\\ud800`` escape in its JSON) become U+FFFD
    (``sanitize.without_surrogates``): nbgrader could not write the graded notebook with one."""

    def preprocess(self, nb, resources):
        from autograder.sanitize import without_surrogates

        return without_surrogates(nb), resources


class _Shared:
    """Our preprocessors reach nbgrader as instances that hold the record (and what ``WrittenAnswers`` finds);
    traitlets deep-copies configuration values, so these are shared rather than copied."""

    def __deepcopy__(self, memo):
        return self


VALID_ID = re.compile(r"[a-zA-Z0-9_\-]+")  # nbgrader's rule for a grade id (``CheckCellMetadata``)


class PlainGradingMetadata(_Shared, NbGraderPreprocessor):
    """Each cell's nbgrader metadata in the types nbgrader reads, before ``OverwriteCells`` restores it from the
    gradebook: a student who edits the JSON (``"points": "ten"``, a ``grade_id`` that is a list) made nbgrader's
    autograde fail on ``float("ten")``, and the raw notebook was shown without the grader's summary (round 5).
    ``points`` that are not a number become 0 (``OverwriteCells`` then puts the release's back, and says so in its
    log), flags that are not booleans become booleans and a ``schema_version`` that is not a whole number nbgrader's
    own (round 6: ``"3"`` made ``CheckCellMetadata`` compare text with a number); a cell whose ``grade_id`` is not one nbgrader accepts loses its nbgrader metadata (nbgrader would refuse
    the notebook) and is shown as a plain cell, as is any cell whose grade id the release does not have (round 6: a
    student's own cell with ``"schema_version": "3"``)."""

    def __init__(self, release_ids: set[str], **kwargs):
        super().__init__(**kwargs)
        self.release_ids = release_ids

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader")
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if isinstance(meta, dict) and self.release_ids and (not isinstance(gid, str) or gid not in self.release_ids):
            del cell.metadata["nbgrader"]  # a cell of the student's own that says it is nbgrader's: a plain cell
        elif isinstance(meta, dict):
            points = meta.get("points")
            if "points" in meta and (isinstance(points, bool) or not isinstance(points, (int, float))
                                     or points != points or points in (float("inf"), float("-inf"))):
                meta["points"] = 0.0
            for flag in ("grade", "solution", "locked", "task"):
                if flag in meta and not isinstance(meta[flag], bool):
                    meta[flag] = bool(meta[flag]) if isinstance(meta[flag], (int, float)) else False
            if "schema_version" in meta and (isinstance(meta["schema_version"], bool)
                                             or not isinstance(meta["schema_version"], int)):
                meta["schema_version"] = SCHEMA_VERSION
            if "grade_id" in meta and not (isinstance(meta["grade_id"], str) and VALID_ID.fullmatch(meta["grade_id"])):
                del cell.metadata["nbgrader"]  # not a cell of the release: a plain cell
        elif meta is not None:
            del cell.metadata["nbgrader"]
        return cell, resources


class CapOutputs(NbGraderPreprocessor):
    """Cuts every text output to ``max_chars`` characters and drops rich outputs 50 times that size."""

    max_chars = Integer(MAX_OUTPUT_CHARS, help="characters kept per text output").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = out.get("text")
            if isinstance(text, str) and len(text) > self.max_chars:
                out["text"] = text[:self.max_chars] + f"\n[... {len(text) - self.max_chars:,} characters cut by the grader]\n"
            for key, value in list(out.get("data", {}).items()):
                if isinstance(value, str) and len(value) > 50 * self.max_chars:
                    out["data"][key] = "[output too large, removed by the grader]" if key.startswith("text") else ""
        return cell, resources


class JudgeOutputs(_Shared, NbGraderPreprocessor):
    """Each autograded code cell's only output becomes its check's line from the record (name, points, message); a
    graded code cell that no check covers says that a TA grades it. Writes nothing but the cells."""

    def __init__(self, record: GradingRecord, **kwargs):
        super().__init__(**kwargs)
        self.checks = {check.grade_id: check for check in record.checks}

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            check = self.checks.get(grade_id)
            points = float(cell.metadata["nbgrader"].get("points", 0))
            line = (verdict_text(grade_id, check.points, check.max_points, check.message) if check
                    else verdict_text(grade_id, 0.0, points, NO_CHECK))
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=line)]
            cell.execution_count = None
        return cell, resources


class WrittenAnswers(_Shared, NbGraderPreprocessor):
    """Reads (never writes) the answers graded by hand: for each, its points and whether the student changed it from
    the release, by nbgrader's own rule (an untouched answer scores 0 automatically and needs no TA). Runs after
    ``OverwriteCells``, which restored each cell's metadata from the gradebook."""

    def __init__(self, record: GradingRecord, **kwargs):
        super().__init__(**kwargs)
        self.checked = {check.grade_id for check in record.checks}
        self.answers: list[WrittenAnswer] = []

    def preprocess_cell(self, cell, resources, index):
        if is_grade(cell) and is_solution(cell) and cell.metadata["nbgrader"]["grade_id"] not in self.checked:
            auto_score, max_points = determine_grade(cell)
            self.answers.append(WrittenAnswer(cell.metadata["nbgrader"]["grade_id"], max_points, auto_score is None))
        return cell, resources


class GraderSummary(_Shared, NbGraderPreprocessor):
    """Puts the grader's summary at the top of the graded notebook, where the TA grades (formgrader) and the student
    reads feedback: the submission's time, its due date (the student's extension), how late it is and what the late
    policy decided (the record's lateness, ``autograder.late``), the record's status and every problem and suspicion
    (why the notebook is flagged). The cell has no nbgrader metadata: it is never graded.
    Problems and suspicions may quote the student's process (an exception's text), so they are a literal block
    (``literal_block``): what they say never becomes the summary's Markdown, HTML or links."""

    def __init__(self, record: GradingRecord, policy: LatePolicy = LatePolicy(), **kwargs):
        super().__init__(**kwargs)
        self.record, self.policy = record, policy

    def preprocess(self, nb, resources):
        record = self.record
        lines = [f"**Grader's summary** (automatic points {record.auto_points:g} of {record.auto_max:g}; "
                 f"status: {record.status})", ""]
        lines += summary_lines(record, self.policy)  # due date, lateness and the late policy (autograder.late)
        if record.notes:
            lines += ["", f"Flagged: {len(record.notes)} problem(s) and suspicion(s), below as plain text: they may "
                      "quote what the submission's own code printed or raised, which is not the grader's word.", "",
                      literal_block([f"- {note}" for note in record.notes])]
        nb.cells.insert(0, nbformat.v4.new_markdown_cell("\n".join(lines)))
        return nb, resources


def literal_block(lines: list[str]) -> str:
    """``lines`` as a Markdown fenced code block: shown as typed, with no Markdown, HTML or maths effect (the fence
    is longer than any run of backticks inside, so no line can close it)."""
    text = "\n".join(lines)
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}"


def too_big_files(folder: Path) -> list[Path]:
    """Files of a submission over ``MAX_COPIED_FILE_BYTES``, relative to ``folder``."""
    return [p.relative_to(folder) for p in sorted(folder.rglob("*")) if p.is_file() and p.stat().st_size > MAX_COPIED_FILE_BYTES]


@dataclass(frozen=True)
class Rendering:
    """What rendering one submission gave: nbgrader's error (None on success), the written answers it found, and its
    time in seconds."""

    error: str | None
    written: tuple[WrittenAnswer, ...]
    seconds: float


def autograde_config(course: Course, record: GradingRecord, leave_out: list[str] = (),
                     submitted_dir: Path | None = None):
    """The course's ``nbgrader_config.py`` plus the no-execution autograde pipeline described above, with our
    preprocessors as instances that hold ``record``; ``leave_out`` names files not to copy into ``autograded/``;
    ``submitted_dir`` replaces ``<course>/submitted`` (a copy of the student's folder). Returns the config and our
    ``WrittenAnswers`` instance."""
    import glob

    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, DeduplicateIds,
                                        IgnorePattern, LimitOutput, OverwriteCells, OverwriteKernelspec)
    config = nbgrader_config(course.root)
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.db_url = course.db_url
    config.CourseDirectory.ignore = list(config.CourseDirectory.ignore) + [glob.escape(name) for name in leave_out]
    if submitted_dir is not None:
        config.CourseDirectory.submitted_directory = str(submitted_dir)
    written = WrittenAnswers(record)
    plain = PlainGradingMetadata(release_cell_ids(course.db_url, record.assignment, f"{record.assignment}.ipynb"))
    config.Autograde.sanitize_preprocessors = [WithoutSurrogates, plain, DeduplicateIds, OverwriteKernelspec,
                                               OverwriteCells, CheckCellMetadata]
    config.Autograde.autograde_preprocessors = [ClearHiddenTests, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                                CapOutputs, JudgeOutputs(record), written, AssignLatePenalties,
                                                CheckCellMetadata, GraderSummary(record, read_policy(course.root))]
    return config, written


def render_submission(course: Course, record: GradingRecord, leave_out: list[str] = (),
                      without_timestamp: bool = False) -> Rendering:
    """``nbgrader autograde`` of the record's submission through nbgrader's API, in this process, executing nothing.

    Writes ``autograded/<student>/<assignment>/`` (files named in ``leave_out`` are not copied) and the submission's
    rows and time in the gradebook, no score. ``without_timestamp``: the submission's ``timestamp.txt`` is not a time
    (nbgrader would stop on it), so nbgrader reads a copy of the folder without it. One student's failure stays theirs:
    nbgrader's error and log are returned, not raised.
    """
    import warnings

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from sqlalchemy.exc import SAWarning

    start = time.perf_counter()
    staging = _without_timestamp(course, record, leave_out) if without_timestamp else None
    try:
        config, written = autograde_config(course, record, leave_out, staging)
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        with warnings.catch_warnings():  # nbgrader's API trips SQLAlchemy 2's autoflush warnings (harmless)
            warnings.simplefilter("ignore", SAWarning)
            result = api.autograde(record.assignment, record.student, force=True, create=True)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    error = None if result.get("success") else f"{result.get('error') or ''}\n{result.get('log') or ''}".strip()[-3000:]
    return Rendering(error, tuple(written.answers) if error is None else (), time.perf_counter() - start)


def _without_timestamp(course: Course, record: GradingRecord, leave_out: list[str]) -> Path:
    """A private copy of the student's submitted folder, laid out as ``submitted/`` is, without its ``timestamp.txt``
    and the files left out (links where the filesystem allows, else copies)."""
    source = course.root / "submitted" / record.student / record.assignment
    staging = Path(tempfile.mkdtemp(prefix="render-"))
    target = staging / record.student / record.assignment
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or path.is_symlink() or path.name in leave_out or relative == Path("timestamp.txt"):
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target / relative)
        except OSError:
            shutil.copy(path, target / relative)
    return staging
