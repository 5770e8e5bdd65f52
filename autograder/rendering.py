"""The executed-notebook view of a graded submission, made by ``nbgrader autograde`` without executing anything.

The judge (``autograder.judge``) is the one grader: it runs the student's code in its sandbox and decides every
autograded cell. nbgrader's autograde then does what it is good at, with its own preprocessors and the course's
configuration, and executes nothing:

- sanitising: ``DeduplicateIds``, ``OverwriteKernelspec``, ``OverwriteCells`` (the instructor's test and locked
  cells replace whatever the student left there), ``CheckCellMetadata``;
- rendering: ``ClearHiddenTests`` (the hidden-test delimiters of ``nbgrader_config.py``), ``LimitOutput``,
  ``CapOutputs`` (characters, for the one-line outputs ``LimitOutput`` lets through), ``JudgeVerdicts`` (below),
  ``AssignLatePenalties``, ``CheckCellMetadata``, ``GraderSummary`` (below).

``JudgeVerdicts`` is nbgrader's ``SaveAutoGrades`` with the judge's verdicts in place of the executed outputs:
each autograded cell's score comes from ``grading/<assignment>/<student>.json`` and the cell's only output is its
check's name, points and message. Written answers keep nbgrader's own rule (manual grading, "No response." when
untouched). The student's own outputs elsewhere in the notebook stay as submitted, capped, for the TA to read.
``GraderSummary`` puts a first cell with the submission time, the lateness and every problem the judge recorded,
so the TA sees why a notebook is flagged where they grade it.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor, SaveAutoGrades
from traitlets import Integer, Unicode

from autograder.course import nbgrader_config
from autograder.gradebook import apply_verdict

MAX_OUTPUT_CHARS = 20_000  # per text output (what TAs and students see)
MAX_COPIED_FILE_BYTES = 100 * 1024**2  # larger submitted files stay out of autograded/ (the result says so)


def verdict_text(grade_id: str, points: float, max_points: float, message: str) -> str:
    """The one line a graded cell shows: name, result, points and the check's message (one clause per part)."""
    word = "PASSED" if points >= max_points else "PARTIAL" if points > 0 else "FAILED"
    return f"[grader] {grade_id}: {word} ({points:g}/{max_points:g} points) - {message}\n"


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


class JudgeVerdicts(SaveAutoGrades):
    """Scores autograded cells from the judge's ``results_dir/<student>.json`` instead of from executed outputs.

    A code cell no check covers scores 0 and waits for a TA (its outputs came from the student, not the grader).
    """

    results_dir = Unicode("", help="folder of the judge's <student>.json results").tag(config=True)

    def preprocess(self, nb, resources):
        path = Path(self.results_dir) / f"{resources['nbgrader']['student']}.json"
        self.checks = json.loads(path.read_text())["checks"]
        return super().preprocess(nb, resources)

    def _add_score(self, cell, resources):
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        check = self.checks.get(grade_id)
        if check is None and cell.cell_type == "markdown":
            return super()._add_score(cell, resources)  # a written answer: nbgrader's rule (graded by hand)
        grade = self.gradebook.find_grade(grade_id, self.notebook_id, self.assignment_id, self.student_id)
        apply_verdict(grade, check["fraction"] if check else 0.0)
        if check is None:  # no check covers this cell: a TA decides
            grade.needs_manual_grade = True
        self.gradebook.db.commit()
        if cell.cell_type == "code":
            message = check["message"] if check else "no automatic check covers this cell; a TA will grade it"
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=verdict_text(
                grade_id, grade.auto_score, float(grade.max_score), message))]
            cell.execution_count = None


class GraderSummary(NbGraderPreprocessor):
    """Puts the grader's summary at the top of the graded notebook, where the TA grades (formgrader) and the student
    reads feedback: the submission's time, how late it is against the gradebook's due date, the judge's status and
    every problem it recorded (why the notebook is flagged). The cell has no nbgrader metadata: it is never graded."""

    results_dir = Unicode("", help="folder of the judge's <student>.json results").tag(config=True)

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        result = json.loads((Path(self.results_dir) / f"{info['student']}.json").read_text())
        lines = [f"**Grader's summary** (automatic points {result['auto_points']:g} of {result['auto_max']:g}; "
                 f"status: {result['status']})", ""]
        with Gradebook(info["db_url"]) as gb:
            try:
                submission = gb.find_submission(info["assignment"], info["student"])
                stamp, due, late = submission.timestamp, submission.duedate, submission.total_seconds_late
            except MissingEntry:
                stamp = due = None
                late = 0.0
        lines.append(f"- submitted: {stamp:%Y-%m-%d %H:%M} UTC" if stamp else "- submitted: time unknown")
        if due is not None:
            lines.append(f"- due: {due:%Y-%m-%d %H:%M} UTC; " + (f"**late by {_duration(late)}**" if late > 0
                                                                   else "on time"))
        lines += [f"- flagged: {problem}" for problem in result.get("problems", [])]
        nb.cells.insert(0, nbformat.v4.new_markdown_cell("\n".join(lines)))
        return nb, resources


def _duration(seconds: float) -> str:
    """``93784`` → ``"1 d 2 h 3 min"``."""
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    return " ".join(f"{v} {u}" for v, u in ((days, "d"), (hours, "h"), (mins, "min")) if v) or "under a minute"


def too_big_files(folder: Path) -> list[Path]:
    """Files of a submission over ``MAX_COPIED_FILE_BYTES``, relative to ``folder``."""
    return [p.relative_to(folder) for p in sorted(folder.rglob("*")) if p.is_file() and p.stat().st_size > MAX_COPIED_FILE_BYTES]


def autograde_config(course_root: Path, db_url: str, results_dir: Path, leave_out: list[str] = ()):
    """The course's ``nbgrader_config.py`` plus the no-execution autograde pipeline described above; ``leave_out``
    names files not to copy into ``autograded/``."""
    import glob

    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, DeduplicateIds,
                                        IgnorePattern, LimitOutput, OverwriteCells, OverwriteKernelspec)
    config = nbgrader_config(course_root)
    config.CourseDirectory.root = str(course_root)
    config.CourseDirectory.db_url = db_url
    config.CourseDirectory.ignore = list(config.CourseDirectory.ignore) + [glob.escape(name) for name in leave_out]
    config.Autograde.sanitize_preprocessors = [DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata]
    config.Autograde.autograde_preprocessors = [ClearHiddenTests, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                                CapOutputs, JudgeVerdicts, AssignLatePenalties, CheckCellMetadata,
                                                GraderSummary]
    config.JudgeVerdicts.results_dir = str(results_dir)
    config.GraderSummary.results_dir = str(results_dir)
    return config


def render_submission(course_root: Path, db_url: str, assignment: str, student: str, results_dir: Path,
                      leave_out: list[str] = ()) -> str | None:
    """``nbgrader autograde`` of one submission through nbgrader's API, in this process, executing nothing.

    Writes ``autograded/<student>/<assignment>/`` and the student's autograded scores (from the judge's result in
    ``results_dir``) into the gradebook; files named in ``leave_out`` are not copied. Returns None on success, else nbgrader's error and log (the caller
    records it; the other students are not affected).
    """
    import warnings

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from sqlalchemy.exc import SAWarning

    config = autograde_config(course_root, db_url, results_dir, leave_out)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    with warnings.catch_warnings():  # nbgrader's API trips SQLAlchemy 2's autoflush warnings (harmless)
        warnings.simplefilter("ignore", SAWarning)
        result = api.autograde(assignment, student, force=True, create=True)
    if result.get("success"):
        return None
    return f"{result.get('error') or ''}\n{result.get('log') or ''}".strip()[-3000:]
