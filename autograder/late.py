"""Late submissions as the syllabus states them: the ``[late]`` table of ``course.toml``, per-student extensions,
and a bank of late days spent across assignments in due-date order; applied through nbgrader's
``LateSubmissionPlugin`` so that formgrader, nbgrader's own totals, the feedback and the export agree.

``course.toml`` (absent table: no penalty, times shown in UTC)::

    [late]
    timezone = "Europe/Berlin"   # the course's time zone: times written without an offset are read in it, and
                                 # every message states it beside UTC
    grace_minutes = 15           # a submission at most this late counts as on time (lateness is then measured
                                 # from the due date, not from the end of the grace period)
    penalty = "per_day"          # "none" (lateness shown, nothing taken), "zero", "per_day" or "per_hour"
    rate = 0.10                  # per_day / per_hour: the share of the points taken per started day / hour
    floor = 0.5                  # the smallest share of the points a late submission keeps (0: it may lose all)
    late_days = 2                # each student's bank for the term: days spent before any penalty

Due dates are nbgrader's (``nbgrader db assignment add A --duedate ...``; UTC in the gradebook). Extensions live in
``<course>/extensions.csv`` (``student,assignment,until,reason``; ``until`` in ISO 8601, without an offset in the
course's time zone), written by ``python -m autograder extend STUDENT ASSIGNMENT --until TIME`` or by hand; an
extension replaces the student's due date and is copied into the gradebook (nbgrader's ``extension``), so that
nbgrader's ``total_seconds_late`` is measured from it.

Every comparison is between aware UTC times. Late days are spent automatically, assignment after assignment in
due-date order: a submission late by more than the grace spends one day per started 24 hours late, as many as the
bank still holds; lateness the days do not cover is penalised by the policy, counted from the end of the days spent.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Unicode

from autograder.errors import GraderError

EXTENSIONS_FILE = "extensions.csv"
EXTENSION_COLUMNS = ("student", "assignment", "until", "reason")
PENALTIES = ("none", "zero", "per_day", "per_hour")
UNIT_SECONDS = {"per_day": 86400, "per_hour": 3600}
DAY = 86400


class LateError(GraderError):
    """The late policy or an extension is malformed; the message says what to write instead."""


@dataclass(frozen=True)
class LatePolicy:
    """The ``[late]`` table of ``course.toml`` (see the module's docstring)."""

    timezone: str = "UTC"
    grace_minutes: float = 0.0
    penalty: str = "none"
    rate: float = 0.0
    floor: float = 0.0
    late_days: int = 0

    @classmethod
    def from_table(cls, table: dict, where: str = "course.toml") -> "LatePolicy":
        """The policy of a ``[late]`` table; raises ``LateError`` naming the key that is wrong."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(table) - known)
        if unknown:
            raise LateError(f"{where} [late]: unknown key(s) {unknown}; the keys are {sorted(known)}")
        try:
            policy = cls(timezone=str(table.get("timezone", "UTC")), grace_minutes=float(table.get("grace_minutes", 0)),
                         penalty=str(table.get("penalty", "none")), rate=float(table.get("rate", 0)),
                         floor=float(table.get("floor", 0)), late_days=int(table.get("late_days", 0)))
        except (TypeError, ValueError) as err:
            raise LateError(f"{where} [late]: {err}; numbers are written without quotes (rate = 0.1)") from None
        if policy.penalty not in PENALTIES:
            raise LateError(f"{where} [late]: penalty {policy.penalty!r} is not one of {', '.join(PENALTIES)}")
        if policy.penalty in UNIT_SECONDS and not 0 < policy.rate <= 1:
            raise LateError(f"{where} [late]: penalty {policy.penalty!r} needs a rate between 0 and 1 (0.1: a tenth "
                            f"of the points per started {policy.unit}), not {policy.rate:g}")
        if not 0 <= policy.floor < 1 or policy.grace_minutes < 0 or policy.late_days < 0:
            raise LateError(f"{where} [late]: floor is a share in [0, 1), grace_minutes and late_days are >= 0")
        policy.zone  # an unknown zone fails here, where the file is named
        return policy

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise LateError(f"course.toml [late]: timezone {self.timezone!r} is not an IANA time zone (e.g. "
                            "'Europe/Berlin', 'America/New_York', 'UTC')") from None

    @property
    def unit(self) -> str:
        return "hour" if self.penalty == "per_hour" else "day"

    def describe(self) -> str:
        """The policy in one sentence, as the syllabus would say it."""
        grace = f"a grace period of {self.grace_minutes:g} min; " if self.grace_minutes else ""
        bank = f"{self.late_days} late day(s) per student for the term; " if self.late_days else ""
        rule = {"none": "late submissions lose nothing",
                "zero": "a late submission scores zero",
                }.get(self.penalty, f"{self.rate:.0%} of the points per started {self.unit} late"
                      + (f", keeping at least {self.floor:.0%}" if self.floor else ""))
        return f"{grace}{bank}{rule} (times in {self.timezone})"

    def fraction(self, seconds: float) -> float:
        """The share of the points taken for ``seconds`` of lateness not covered by grace or late days."""
        if seconds <= 0 or self.penalty == "none":
            return 0.0
        if self.penalty == "zero":
            return 1.0
        units = math.ceil(seconds / UNIT_SECONDS[self.penalty])
        return min(self.rate * units, 1.0 - self.floor)


def read_policy(course_root) -> LatePolicy:
    """The ``[late]`` table of ``<course_root>/course.toml`` (``GradedSetting.late`` reads it the same way)."""
    from autograder.term import GradedSetting

    return GradedSetting.read(course_root).late


# --- times -------------------------------------------------------------------------------------------------------


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 time → aware UTC. Without an offset it is read in the course's ``zone``; a local time that does
    not exist (clocks jump forward) or exists twice (they go back) is refused: write it with its offset."""
    try:
        when = datetime.fromisoformat(text.strip().replace(" UTC", "+00:00"))
    except ValueError:
        raise LateError(f"{text!r} is not an ISO 8601 time (e.g. 2026-12-04T23:59 in the course's time zone, or "
                        "2026-12-04T22:59:00+00:00)") from None
    if when.tzinfo is None:
        first, second = when.replace(tzinfo=zone, fold=0), when.replace(tzinfo=zone, fold=1)
        if first.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != when:
            raise LateError(f"{text} does not exist in {zone.key} (the clocks jump forward then): give a time that "
                            "exists, or write it with an offset")
        if first.utcoffset() != second.utcoffset():
            raise LateError(f"{text} happens twice in {zone.key} (the clocks go back): write it with its offset, "
                            f"{first.isoformat()} or {second.isoformat()}")
        when = first
    return when.astimezone(timezone.utc)


def utc(when: datetime | None) -> datetime | None:
    """nbgrader's naive UTC (or an aware time) → aware UTC."""
    if when is None:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def shown(when: datetime, zone: ZoneInfo) -> str:
    """``2026-03-08 23:59 EDT (America/New_York; 03:59 UTC)``: the course's local time, stated, with UTC."""
    local = when.astimezone(zone)
    if zone.key == "UTC":
        return f"{when.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({zone.key}; {when.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC)"


def duration(seconds: float) -> str:
    """``93784`` → ``"1 d 2 h 3 min"``; under a minute in seconds."""
    if seconds < 60:
        return f"{seconds:g} s"
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    return " ".join(f"{v} {u}" for v, u in ((days, "d"), (hours, "h"), (mins, "min")) if v)


# --- extensions --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    student: str
    assignment: str
    until: datetime  # aware UTC
    reason: str = ""


def read_extensions(course_root, zone: ZoneInfo) -> dict[tuple[str, str], Extension]:
    """``<course>/extensions.csv`` → {(student, assignment): Extension}; a later row replaces an earlier one."""
    path = Path(course_root) / EXTENSIONS_FILE
    if not path.is_file():
        return {}
    found = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = set(EXTENSION_COLUMNS[:3]) - set(reader.fieldnames or ())
        if missing:
            raise LateError(f"{path}: no column(s) {sorted(missing)}; its header is {','.join(EXTENSION_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            student, assignment = (row["student"] or "").strip(), (row["assignment"] or "").strip()
            if not student or not assignment:
                raise LateError(f"{path}, line {line}: a student and an assignment are needed")
            try:
                until = parse_time(row["until"] or "", zone)
            except LateError as err:
                raise LateError(f"{path}, line {line}: {err}") from None
            found[(student, assignment)] = Extension(student, assignment, until, (row.get("reason") or "").strip())
    return found


def write_extension(course_root, extension: Extension | None, student: str, assignment: str) -> Path:
    """Sets (or with ``None`` removes) the student's extension of the assignment in ``extensions.csv``, keeping the
    other rows; the time is written in UTC."""
    path = Path(course_root) / EXTENSIONS_FILE
    rows = []
    if path.is_file():
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.DictReader(f) if (r.get("student"), r.get("assignment")) != (student, assignment)]
    if extension is not None:
        rows.append({"student": student, "assignment": assignment,
                     "until": extension.until.astimezone(timezone.utc).isoformat(), "reason": extension.reason})
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, EXTENSION_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


# --- the assessment ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handed:
    """One assignment as one student handed it in: its due date and the submission's time (aware UTC; None when
    unknown)."""

    assignment: str
    due: datetime | None
    submitted_at: datetime | None


@dataclass(frozen=True)
class Lateness:
    """What the policy decided about one submission.

    Attributes:
        seconds_late: after the deadline (the extension's when there is one); 0 when on time or unknown.
        late_days_spent: days of the bank this submission used; ``late_days_left`` what the bank holds after it.
        penalised_seconds: the lateness that grace and late days do not cover.
        fraction: the share of the points the policy takes (0 to 1).
    """

    assignment: str
    due: datetime | None = None
    extended_until: datetime | None = None
    submitted_at: datetime | None = None
    seconds_late: float = 0.0
    late_days_spent: int = 0
    late_days_left: int = 0
    penalised_seconds: float = 0.0
    fraction: float = 0.0
    text: str = ""
    policy: LatePolicy = field(default_factory=LatePolicy, repr=False, compare=False)

    @property
    def deadline(self) -> datetime | None:
        return self.extended_until or self.due


def assess(policy: LatePolicy, handed: list[Handed], extensions: dict[str, datetime]) -> dict[str, Lateness]:
    """Each of one student's submissions judged by ``policy``, late days spent in due-date order.

    Args:
        handed: the student's assignments (any order).
        extensions: assignment → the student's extended deadline (aware UTC).
    """
    grace, bank, found = policy.grace_minutes * 60, policy.late_days, {}
    last = datetime.max.replace(tzinfo=timezone.utc)
    for h in sorted(handed, key=lambda h: (h.due or last, h.assignment)):
        extended = extensions.get(h.assignment)
        deadline = extended or h.due
        late = max(0.0, (h.submitted_at - deadline).total_seconds()) if deadline and h.submitted_at else 0.0
        spent, penalised = 0, 0.0
        if late > grace:
            spent = min(bank, math.ceil(late / DAY))
            bank -= spent
            penalised = max(0.0, late - spent * DAY)
        judged = Lateness(h.assignment, h.due, extended, h.submitted_at, late, spent, bank, penalised,
                          policy.fraction(penalised), policy=policy)
        found[h.assignment] = replace(judged, text="; ".join(phrases(judged)).replace("**", ""))
    return found


def phrases(judged: Lateness) -> list[str]:
    """The assessment in words, in the course's time zone and UTC: the due date, the submission's time, and the
    verdict (the lateness in **bold** when the policy counts it)."""
    policy, zone = judged.policy, judged.policy.zone
    if judged.deadline is None:
        return ["no due date"] + ([f"submitted {shown(judged.submitted_at, zone)}"] if judged.submitted_at else [])
    due = f"due {shown(judged.deadline, zone)}" + (
        f" (extended from {shown(judged.due, zone)})" if judged.extended_until and judged.due else "")
    if judged.submitted_at is None:
        return [due, "submission time unknown: lateness not judged (collect's timestamps.csv gives the times)"]
    said = [due, f"submitted {shown(judged.submitted_at, zone)}"]
    late = judged.seconds_late
    if late == 0:
        return said + ["on time"]
    if late <= policy.grace_minutes * 60:
        return said + [f"late by {duration(late)}, within the {policy.grace_minutes:g} min grace period: on time"]
    said.append(f"**late by {duration(late)}**")
    if policy.late_days:
        said.append(f"{judged.late_days_spent} late day(s) spent, {judged.late_days_left} left of "
                    f"{policy.late_days}")
    if judged.fraction:
        said.append(f"late penalty {judged.fraction:.0%} of the points ({policy.describe()})")
    else:
        said.append("no late penalty" + (" (the course's policy)" if policy.penalty == "none" else ""))
    return said


def from_record(record, policy: LatePolicy) -> Lateness:
    """The assessment a record (``autograder.records.GradingRecord``) holds, for ``phrases``."""
    return Lateness(record.assignment, record.due_at, record.extended_until, record.submitted_at, record.seconds_late,
                    record.late_days_spent, record.late_days_left, 0.0, record.late_penalty, record.lateness, policy)


def summary_lines(record, policy: LatePolicy) -> list[str]:
    """The grader's summary's lines about time (markdown): the submission's time, then the due date and verdict."""
    judged = from_record(record, policy)
    stamp = record.submitted_at
    lines = [f"- submitted: {shown(stamp, policy.zone)}" if stamp else "- submitted: time unknown"]
    if judged.deadline is not None:
        lines.append("- " + "; ".join(p for p in phrases(judged) if not p.startswith("submitted ")))
    return lines


def student_lateness(course, student: str, times: dict[str, datetime | None] | None = None) -> dict[str, Lateness]:
    """The student's lateness on every assignment the gradebook holds, from its due dates and submission times, the
    course's policy and ``extensions.csv``. ``times`` replaces the gradebook's submission time of some assignments
    (the submission being graded, whose time the gradebook may not hold yet)."""
    from nbgrader.api import Gradebook, MissingEntry

    policy = read_policy(course.root)
    extensions = {a: e.until for (s, a), e in read_extensions(course.root, policy.zone).items() if s == student}
    times = times or {}
    handed = []
    with Gradebook(course.db_url) as gb:
        for assignment in gb.assignments:
            if assignment.name in times:
                handed.append(Handed(assignment.name, utc(assignment.duedate), utc(times[assignment.name])))
                continue
            try:
                stamp = gb.find_submission(assignment.name, student).timestamp
            except MissingEntry:
                continue
            handed.append(Handed(assignment.name, utc(assignment.duedate), utc(stamp)))
    return assess(policy, handed, extensions)


def record_fields(lateness: Lateness | None) -> dict:
    """The record's lateness fields (``autograder.records.GradingRecord``) from an assessment."""
    if lateness is None:
        return {"due_at": None, "extended_until": None, "seconds_late": 0.0, "late_days_spent": 0,
                "late_days_left": 0, "late_penalty": 0.0, "lateness": ""}
    return {"due_at": lateness.due, "extended_until": lateness.extended_until, "seconds_late": lateness.seconds_late,
            "late_days_spent": lateness.late_days_spent, "late_days_left": lateness.late_days_left,
            "late_penalty": lateness.fraction, "lateness": lateness.text}


def with_lateness(course, record):
    """``record`` (``autograder.records.GradingRecord``) with its lateness judged, before it is rendered and saved."""
    from dataclasses import replace

    judged = student_lateness(course, record.student, {record.assignment: record.submitted_at})
    return replace(record, **record_fields(judged.get(record.assignment)))


class CoursePenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin for this course (``nbgrader_config.py``): the penalty of the ``[late]``
    policy, late days and extensions included. nbgrader's ``AssignLatePenalties`` creates it with itself as parent
    and calls ``late_submission_penalty``; the assignment is the parent's ``assignment_id`` (or this plugin's own
    ``assignment_id`` when used outside it), the course the configuration's ``CourseDirectory.root``."""

    assignment_id = Unicode("", help="the assignment, when no AssignLatePenalties parent says it").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        from autograder.course import Course

        assignment = getattr(self.parent, "assignment_id", None) or self.assignment_id
        course = Course(Path(self.config.CourseDirectory.root or ".").resolve())
        judged = student_lateness(course, student_id).get(assignment)
        if judged is None or judged.fraction == 0 or not score:
            return None
        return round(judged.fraction * score, 4)


def apply_penalties(course, assignment: str, students: list[str] | None = None) -> dict[str, Lateness]:
    """The policy's penalty of every submission of ``assignment`` (or only ``students``') into the gradebook, from
    its current scores (automatic and manual: run again after formgrader, as ``feedback`` and ``export`` do): each
    student's extension becomes nbgrader's ``extension``, and ``CoursePenalty`` gives each notebook's
    ``late_submission_penalty``. Returns each student's lateness."""
    from nbgrader.api import Gradebook

    from autograder.course import nbgrader_config
    from autograder.gradebook import submissions_of

    config = nbgrader_config(course.root)
    config.CourseDirectory.root = str(course.root)
    plugin = CoursePenalty(config=config, assignment_id=assignment)
    policy = read_policy(course.root)
    extensions = read_extensions(course.root, policy.zone)
    judged = {}
    with Gradebook(course.db_url) as gb:
        for submission in submissions_of(gb, assignment):
            student = submission.student.id
            if students is not None and student not in students:
                continue
            extension = extensions.get((student, assignment))
            due = utc(submission.assignment.duedate)
            submission.extension = (extension.until - due) if extension and due else None
            gb.db.commit()
            lateness = student_lateness(course, student).get(assignment)
            judged[student] = lateness
            for notebook in submission.notebooks:
                penalty = (plugin.late_submission_penalty(student, notebook.score, submission.total_seconds_late)
                           if lateness and lateness.fraction else None)
                notebook.late_submission_penalty = min(penalty, notebook.score) if penalty else None
            gb.db.commit()
    _refresh_records(course, assignment, judged)
    return judged


def apply_all_penalties(course) -> None:
    """``apply_penalties`` to every assignment in the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        assignments = [a.name for a in gb.assignments]
    for assignment in assignments:
        apply_penalties(course, assignment)


def _refresh_records(course, assignment: str, judged: dict[str, Lateness]) -> None:
    """Saves again the records whose lateness changed since they were graded (an extension granted later, late days
    spent on an assignment collected later)."""
    from dataclasses import replace

    from autograder.records import RecordStore

    store = RecordStore(course, assignment)
    for student, lateness in judged.items():
        record = store.get(student)
        if record is None:
            continue
        fields = record_fields(lateness)
        if any(getattr(record, name) != value for name, value in fields.items()):
            store.save(replace(record, **fields), f"{assignment}.ipynb")


def extend(course, student: str, assignment: str, until: str | None, reason: str = "", log=print) -> Extension | None:
    """``python -m autograder extend``: gives ``student`` until ``until`` (ISO 8601; without an offset in the course's
    time zone) for ``assignment``, or with ``until=None`` takes their extension away; writes ``extensions.csv`` and
    applies the policy again to every assignment (late days move with it). Returns the extension."""
    from nbgrader.api import Gradebook, MissingEntry

    policy = read_policy(course.root)
    read_extensions(course.root, policy.zone)  # a malformed file is said before it is rewritten
    with Gradebook(course.db_url) as gb:
        assignments = [a.name for a in gb.assignments]
        students = {s.id for s in gb.students}
        due = None
        if assignment in assignments:
            due = utc(gb.find_assignment(assignment).duedate)
    if assignment not in assignments:
        raise LateError(f"no assignment {assignment!r} in the gradebook; it has {', '.join(sorted(assignments)) or 'none'}"
                        " (release it first)")
    if student not in students:
        raise LateError(f"no student {student!r} in the gradebook: give their login as the roster has it (python -m "
                        "autograder roster imports it)")
    extension = None
    if until is not None:
        extension = Extension(student, assignment, parse_time(until, policy.zone), reason)
        if due is not None and extension.until <= due:
            raise LateError(f"{shown(extension.until, policy.zone)} is not after {assignment}'s due date "
                            f"{shown(due, policy.zone)}: an extension ends later than the due date")
    path = write_extension(course.root, extension, student, assignment)
    for name in assignments:  # late days move with the extension
        apply_penalties(course, name, [student])
    now = student_lateness(course, student).get(assignment)
    said = (f"{student} has until {shown(extension.until, policy.zone)} for {assignment}" if extension
            else f"{student}'s extension of {assignment} removed")
    log(f"extend: {said} ({path.name})" + (f"; now: {now.text}" if now and now.submitted_at else ""))
    from autograder.records import RecordStore

    if RecordStore(course, assignment).get(student) is not None:
        log(f"extend: the record, nbgrader's penalty, feedback and export follow it; the grader's summary formgrader "
            f"shows is redrawn by `python -m autograder grade {assignment} --student {student} --force`")
    return extension
