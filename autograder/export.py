"""``export``: the gradebook and the grading records as tables, with pandas; ``summary``: the same, printed only.

Writes to ``grading/export/``:
- ``<assignment>_scores.csv``: one row per student, one column per graded cell (manual score where a TA gave one,
  else the automatic one), the total before and after the late penalty, the points still to be graded by hand, and
  from the student's record (``autograder.records``): status, lateness (due date, extension, late days, the policy's
  sentence), problems, suspicions and the recomputed mIoU;
- ``<assignment>_summary.json``: count, mean, median, standard deviation, quartiles, tier counts;
- ``<assignment>_histogram.png``: the distribution of totals;
- ``canvas_import.csv``: every assignment's total (after the late penalty) in Canvas' gradebook-import format; the
  cell of a student whose grade is not complete (answers still to be graded by hand) is left empty, unless
  ``provisional`` (then the log says how many are provisional): a number never reaches the LMS looking final when
  it is not;
- ``nbgrader_grades.csv``: nbgrader's own ``export``, through ``autograder.nbgrader_export.SafeCsvExport`` (quoted,
  formula-safe).
Every file is rewritten from the gradebook and the records on each run, so running it twice gives the same files.
The late policy (``autograder.late``) is applied again first, on the scores as formgrader left them. Text a student
can influence (names, problems, messages) is written so that a spreadsheet never reads it as a formula.
The CSV files are UTF-8; a character UTF-8 cannot hold (none reaches a record: ``records.printable``) is written as
a backslash escape rather than stopping the export of the whole class.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from nbgrader.api import Gradebook, MissingEntry  # noqa: E402

from autograder.course import Course, run_nbgrader  # noqa: E402
from autograder.errors import GraderError  # noqa: E402
from autograder.gradebook import submissions_of  # noqa: E402
from autograder.late import apply_all_penalties  # noqa: E402
from autograder.nbgrader_export import spreadsheet_safe  # noqa: E402
from autograder.records import RecordStore  # noqa: E402
from autograder.roster import roster_of  # noqa: E402
from autograder.term import GradedSetting  # noqa: E402
from course_lib.term import Tiers  # noqa: E402

CSV = {"encoding": "utf-8", "errors": "backslashreplace"}  # how every CSV here is written (see the docstring)


def tier_cells(tiers: Tiers) -> dict[str, str]:
    """Each tier cell's label in the summary, from the term's declared thresholds (``GradedSetting.tiers``)."""
    return {f"test_miou_{name}": f"tier {threshold:g}" for name, threshold in tiers.as_dict().items()}


def pending_points(course: Course, assignment: str) -> dict[str, tuple[float, list[str]]]:
    """Each submitted student → the points still to be graded by hand and those cells: the graded cells with neither
    an automatic score nor a TA's (an answered written answer, ``GradingRecord.written``, until formgrader scores
    it; a cell no check covers)."""
    pending = {}
    with Gradebook(course.db_url) as gb:
        for submission in submissions_of(gb, assignment):
            cells = [(g.name, float(g.max_score)) for nb in submission.notebooks for g in nb.grades
                     if g.auto_score is None and g.manual_score is None]
            pending[submission.student.id] = (sum(points for _, points in cells), [name for name, _ in cells])
    return pending


def scores_table(course: Course, assignment: str) -> pd.DataFrame:
    """Students × graded cells, with totals, late penalty, points still to grade, lateness, status and problems."""
    rows = []
    with Gradebook(course.db_url) as gb:
        try:
            cells = [(nb.name, c.name, float(c.max_score)) for nb in gb.find_assignment(assignment).notebooks
                     for c in nb.grade_cells]
        except MissingEntry:
            raise GraderError(f"assignment {assignment!r} is not in the gradebook: run `release` first")
        for student in sorted(gb.students, key=lambda s: s.id):
            row = {"student": student.id}
            try:
                submission = gb.find_submission(assignment, student.id)
            except MissingEntry:
                row.update({name: 0.0 for _, name, _ in cells})
                row.update(status="not submitted", late_seconds=0.0)
                rows.append(row)
                continue
            for nb in submission.notebooks:
                for grade in nb.grades:
                    row[grade.name] = float(grade.score or 0.0)
            row["needs_manual_grading"] = bool(submission.needs_manual_grade)
            row["late_seconds"] = float(submission.total_seconds_late or 0.0)
            row["late_penalty"] = float(submission.late_submission_penalty or 0.0)
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    names = [name for _, name, _ in cells]
    for name in names:
        table[name] = table.get(name, 0.0).fillna(0.0)
    table["raw_total"] = table[names].sum(axis=1)
    table["late_penalty"] = table["late_penalty"].fillna(0.0) if "late_penalty" in table else 0.0
    table["total"] = table["raw_total"] - table["late_penalty"]
    table["max"] = sum(m for *_, m in cells)
    pending = pending_points(course, assignment)
    table["to_grade"] = [pending.get(s, (0.0, []))[0] for s in table["student"]]
    table["provisional"] = table["to_grade"] > 0
    records = {record.student: record for record in RecordStore(course, assignment).records()}
    at = lambda when: when.isoformat() if when else ""
    table["due_at"] = [at(records[s].due_at) if s in records else "" for s in table["student"]]
    table["extended_until"] = [at(records[s].extended_until) if s in records else "" for s in table["student"]]
    table["late_days_spent"] = [records[s].late_days_spent if s in records else 0 for s in table["student"]]
    table["lateness"] = [records[s].lateness if s in records else "" for s in table["student"]]
    table["status"] = [records[s].status if s in records else st if isinstance(st, str) else "not graded"
                       for s, st in zip(table["student"], table.get("status", [None] * len(table)))]
    table["problems"] = ["; ".join(records[s].problems) if s in records else "" for s in table["student"]]
    table["suspicions"] = ["; ".join(records[s].flags) if s in records else "" for s in table["student"]]
    table["recomputed_miou"] = [records[s].miou.effective if s in records and records[s].miou else None
                                for s in table["student"]]
    ordered = ["student", *names, "raw_total", "late_penalty", "total", "max", "to_grade", "provisional",
               "late_seconds", "due_at", "extended_until", "late_days_spent", "lateness", "status", "problems",
               "suspicions", "recomputed_miou"]
    extra = [c for c in table.columns if c not in ordered]
    return table[ordered + extra]


def summary(table: pd.DataFrame, assignment: str, tiers: Tiers = Tiers()) -> dict:
    graded = table[table["status"] != "not submitted"]
    totals = graded["total"] if not graded.empty else pd.Series(dtype=float)
    describe = totals.describe() if len(totals) else pd.Series(dtype=float)
    return {
        "assignment": assignment,
        "students": int(len(table)), "submitted": int(len(graded)),
        "max_points": float(table["max"].iloc[0]) if len(table) else 0.0,
        "mean": float(totals.mean()) if len(totals) else None,
        "median": float(totals.median()) if len(totals) else None,
        "std": float(totals.std()) if len(totals) > 1 else None,
        "min": float(totals.min()) if len(totals) else None,
        "max": float(totals.max()) if len(totals) else None,
        "quartiles": [float(describe[q]) for q in ("25%", "50%", "75%")] if len(totals) else [],
        "tier_counts": {label: int((graded[cell] > 0).sum()) for cell, label in tier_cells(tiers).items() if cell in graded},
        "status_counts": {k: int(v) for k, v in table["status"].value_counts().items()},
        "late": int((graded["late_seconds"] > 0).sum()) if "late_seconds" in graded else 0,
        "penalised": int((graded["late_penalty"] > 0).sum()) if "late_penalty" in graded else 0,
        "provisional": int(graded["provisional"].sum()) if "provisional" in graded else 0,
    }


def histogram(table: pd.DataFrame, assignment: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    graded = table[table["status"] != "not submitted"]
    top = float(table["max"].iloc[0]) if len(table) else 1.0
    ax.hist(graded["total"], bins=min(20, max(5, len(graded))), range=(0, top), color="tab:blue", edgecolor="white")
    ax.set(xlabel=f"total points (of {top:g})", ylabel="students", title=f"{assignment}: score distribution")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def canvas_csv(tables: dict[str, pd.DataFrame], path: Path, people: dict | None = None,
               provisional: bool = False) -> dict[str, list[str]]:
    """Canvas gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then one column per assignment;
    the second row holds the points possible, as in Canvas' own export. ``people`` (``autograder.roster.roster_of``)
    gives each student's name ("Last, First") and Canvas user id, on which Canvas matches the rows. A student whose
    grade is provisional (the table's ``provisional``) gets an empty cell (no grade from us), unless
    ``provisional``. Returns, per assignment, the students whose grade is provisional (left empty or exported)."""
    people = people or {}
    students = sorted({s for t in tables.values() for s in t["student"]})

    def name(student: str) -> str:
        person = people.get(student)
        parts = [p for p in (person.last_name, person.first_name) if p] if person else []
        return ", ".join(parts) or student

    ids = [(people[s].lms_user_id or "") if s in people else "" for s in students]
    frame = pd.DataFrame({"Student": [name(s) for s in students], "ID": ids, "SIS User ID": students,
                          "SIS Login ID": students, "Section": ""})
    possible = {"Student": "    Points Possible", "ID": "", "SIS User ID": "", "SIS Login ID": "", "Section": ""}
    unfinished = {}
    for assignment, table in tables.items():
        totals = dict(zip(table["student"], table["total"]))
        pending = set(table["student"][table["provisional"]]) if "provisional" in table else set()
        unfinished[assignment] = sorted(pending)
        frame[assignment] = [None if s in pending and not provisional else round(totals.get(s, 0.0), 2)
                             for s in students]
        possible[assignment] = float(table["max"].iloc[0]) if len(table) else 0.0
    for column in ("Student", "SIS User ID", "SIS Login ID"):
        frame[column] = frame[column].map(spreadsheet_safe)
    pd.concat([pd.DataFrame([possible]), frame], ignore_index=True).to_csv(path, index=False, **CSV)
    return unfinished


def _in_gradebook(course: Course, assignment: str) -> bool:
    with Gradebook(course.db_url) as gb:
        try:
            gb.find_assignment(assignment)
            return True
        except MissingEntry:
            return False


def score_tables(course: Course, assignments: list[str] | None = None, log=print) -> dict[str, pd.DataFrame]:
    """``scores_table`` of each assignment (default: every one the course has) that has students in the gradebook."""
    found = {}
    for assignment in assignments or course.assignments():
        table = scores_table(course, assignment)
        if table.empty:
            log(f"{assignment}: no students in the gradebook yet")
            continue
        found[assignment] = table
    return found


def export(course: Course, assignments: list[str] | None = None, log=print,
           provisional: bool = False) -> dict[str, dict]:
    """Writes every file above; returns each assignment's ``summary``. ``provisional``: the Canvas file carries the
    totals of students whose written answers are not all graded yet (the log says how many)."""
    out = course.root / "grading" / "export"
    out.mkdir(parents=True, exist_ok=True)
    apply_all_penalties(course)  # on the scores as formgrader left them
    tables = score_tables(course, assignments, log)
    tiers = GradedSetting.read(course.root).tiers
    summaries = {assignment: summary(table, assignment, tiers) for assignment, table in tables.items()}
    for assignment, table in tables.items():
        table.map(spreadsheet_safe).to_csv(out / f"{assignment}_scores.csv", index=False, **CSV)
        (out / f"{assignment}_summary.json").write_text(json.dumps(summaries[assignment], indent=2))
        histogram(table, assignment, out / f"{assignment}_histogram.png")
    canvas_tables = dict(tables)  # the LMS file always carries every graded assignment, not only those asked for
    for other in course.assignments():
        if other not in canvas_tables:
            table = scores_table(course, other) if _in_gradebook(course, other) else pd.DataFrame()
            if not table.empty:
                canvas_tables[other] = table
    if canvas_tables:
        unfinished = canvas_csv(canvas_tables, out / "canvas_import.csv", roster_of(course.db_url), provisional)
        for assignment, students in unfinished.items():
            if students and provisional:
                log(f"canvas_import.csv: {assignment}: {len(students)} PROVISIONAL grade(s) exported, answers still "
                    f"to grade by hand: {', '.join(students)}")
            elif students:
                log(f"canvas_import.csv: {assignment}: {len(students)} cell(s) left empty, answers still to grade by "
                    f"hand: {', '.join(students)} (grade them in formgrader and export again, or export "
                    f"--provisional)")
    proc = run_nbgrader(["export", "--to", str(out / "nbgrader_grades.csv")], course.root, course.db_url)
    if proc.returncode != 0:
        log(f"nbgrader export failed: {proc.stderr[-500:]}")
    log(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
    return summaries


def print_summary(course: Course, tables: dict[str, pd.DataFrame], log=print) -> None:
    """The summary of each assignment's table and its students' totals, status, problems and suspicions, printed
    (``summary`` prints ``score_tables(course)`` this way and writes nothing)."""
    tiers = GradedSetting.read(course.root).tiers
    for assignment, table in tables.items():
        s = summary(table, assignment, tiers)
        mean = f"{s['mean']:.1f}" if s["mean"] is not None else "-"
        median = f"{s['median']:.1f}" if s["median"] is not None else "-"
        log(f"\n{assignment}: {s['submitted']} submitted of {s['students']} students, mean {mean} / "
            f"{s['max_points']:g}, median {median}; tiers {s['tier_counts']}; late {s['late']} "
            f"({s['penalised']} penalised); provisional {s['provisional']}")
        cols = ["student", "total", "max", "to_grade", "late_penalty", "status", "problems", "suspicions"]
        with pd.option_context("display.max_colwidth", 90, "display.width", 200):
            log(table[cols].fillna("").to_string(index=False))

