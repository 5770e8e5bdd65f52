"""nbgrader's ``export`` (``grading/export/nbgrader_grades.csv``), written so that a spreadsheet reads it as data.

nbgrader's own ``CsvExportPlugin`` joins each row's fields with commas, without quoting: a name that holds a comma
shifts the columns (a display name ``"Kowalczyk, Fay,fay@uni.example,45.0,0.0,45.0,45.0"`` made a spreadsheet read
45/45 for a student with 22 of 85; pandas could not read the file), and one that starts with ``=`` is a formula
(round 5). ``SafeCsvExport`` is the same export through nbgrader's public plugin hook (``ExportApp.plugin_class``,
set in the course's ``nbgrader_config.py``): the same columns and rows, written by the ``csv`` module (every field
that needs it quoted) with text that starts like a formula given a leading ``'`` (``export.spreadsheet_safe``).
"""

from __future__ import annotations

import csv

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin

KEYS = ("assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email", "raw_score",
        "late_submission_penalty", "score", "max_score")  # nbgrader's CsvExportPlugin's columns, in its order
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula (OWASP)


def spreadsheet_safe(value):
    """``value`` as a spreadsheet shows it and never runs it: text that starts like a formula gets a leading ``'``."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


class SafeCsvExport(ExportPlugin):
    """nbgrader's CSV export (``--to``, ``--student``, ``--assignment`` as nbgrader's), quoted and formula-safe."""

    def export(self, gradebook: Gradebook) -> None:
        students = {str(s) for s in self.student}
        assignments = {str(a) for a in self.assignment}
        with open(self.to or "grades.csv", "w", newline="", encoding="utf-8", errors="backslashreplace") as out:
            writer = csv.writer(out)
            writer.writerow(KEYS)
            for assignment in gradebook.assignments:
                if assignments and assignment.name not in assignments:
                    continue
                for student in gradebook.students:
                    if students and student.id not in students:
                        continue
                    row = {"assignment": assignment.name, "duedate": assignment.duedate, "student_id": student.id,
                           "last_name": student.last_name, "first_name": student.first_name,
                           "email": student.email, "max_score": assignment.max_score}
                    try:
                        submission = gradebook.find_submission(assignment.name, student.id)
                    except MissingEntry:  # nothing submitted: zero, as nbgrader's
                        row.update(timestamp="", raw_score=0.0, late_submission_penalty=0.0, score=0.0)
                    else:
                        penalty = submission.late_submission_penalty
                        row.update(timestamp=submission.timestamp, raw_score=submission.score,
                                   late_submission_penalty=penalty, score=max(0.0, submission.score - penalty))
                    writer.writerow([spreadsheet_safe("" if row[key] is None else str(row[key])) for key in KEYS])
