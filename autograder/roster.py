"""The class roster in the gradebook: who each Canvas user is in the course (their login is the nbgrader student id),
with names and emails so that formgrader and the exports show people.

``python -m autograder roster <file.csv>`` imports a roster CSV (``read_roster``, ``import_roster``): Canvas'
gradebook export (``Student`` as "Last, First", ``ID`` = the Canvas user id, ``SIS User ID``, ``SIS Login ID``,
``Section``; no emails) or a people list with ``login``/``email``/``first_name``/``last_name`` (and optionally
``id``) columns; column names are matched without regard to case. A row that cannot be used (no login, a login
that is no safe folder name such as ``..``, a Canvas id that is not a number, a login or Canvas id on two rows
that disagree) is skipped and listed; the others are imported.

Identity is the Canvas user id: the gradebook never gives one id to two students. ``collect`` matches the files of
an export on it (``autograder.collect``); a Canvas user it does not know is collected under a stand-in named after
Canvas's file-name prefix and noted in ``grading/canvas_standins.json``. When a roster later names that user,
``import_roster`` moves the stand-in's submissions to the roster's login and removes the stand-in
(``merge_student``). The Canvas import file (``autograder.export.canvas_csv``) takes ``Student`` and ``ID`` from here.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from autograder.canvas_names import name_key
from autograder.errors import GraderError
from autograder.safe_unzip import name_problem, shown

LOGIN_COLUMNS = ("sis login id", "login", "login_id", "student_id", "username", "id_login")
LMS_ID_COLUMNS = ("id", "user id", "canvas user id", "lms_user_id")
EMAIL_COLUMNS = ("email", "e-mail", "email address")
MAX_FIELD = 128  # nbgrader's gradebook: String(128) for ids, names and emails
STANDINS = Path("grading") / "canvas_standins.json"
DERIVED = ("autograded", "feedback")  # per-student folders made from submitted/, remade by `grade`, `feedback`


@dataclass(frozen=True)
class Person:
    """One roster row: the student's id in the course (their LMS login, lower case) and what the gradebook shows."""

    student: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    lms_user_id: str | None = None


@dataclass(frozen=True)
class Roster:
    """The people of a roster file and the rows it skipped (``"line 4: ...: skipped"``). Iterates over the people."""

    people: tuple[Person, ...]
    skipped: tuple[str, ...] = ()

    def __iter__(self):
        return iter(self.people)

    def __len__(self) -> int:
        return len(self.people)


def student_id_problem(student: str) -> str | None:
    """Why ``student`` cannot be an nbgrader student id (it names folders under ``submitted/``), or ``None``."""
    problem = name_problem(student)
    if problem:
        return problem
    if student.startswith("-"):
        return "a name starting with '-'"
    if len(student) > MAX_FIELD:
        return f"over {MAX_FIELD} characters"
    return None


def _column(header: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((header[n] for n in names if n in header), None)


def read_roster(path: Path) -> Roster:
    """The people of a roster CSV (see the module's docstring for the accepted columns); unusable rows are skipped
    and listed in ``Roster.skipped``.

    Raises:
        GraderError: the file is missing, not a CSV, empty, or has no login column.
    """
    path = Path(path)
    if not path.is_file():
        raise GraderError(f"no roster file at {path}: export the gradebook (or the people list) from the LMS as CSV")
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as err:
        raise GraderError(f"{path} is not a readable CSV file ({err})") from err
    if not rows:
        raise GraderError(f"{path} has no rows")
    header = {name.strip().lower(): name for name in rows[0] if name}
    login = _column(header, LOGIN_COLUMNS)
    if login is None:
        raise GraderError(f"{path} has no login column: expected one of {', '.join(LOGIN_COLUMNS)} "
                          f"(its columns: {', '.join(header.values())})")
    lms, email = _column(header, LMS_ID_COLUMNS), _column(header, EMAIL_COLUMNS)
    first = header.get("first_name") or header.get("first name")
    last = header.get("last_name") or header.get("last name")
    full = header.get("student") or header.get("name")
    cell = lambda row, column: ((row.get(column) or "").strip() or None) if column else None
    people: dict[int, Person] = {}
    skipped = []
    for number, row in enumerate(rows, start=2):
        student, name, user_id = (cell(row, login) or "").lower(), cell(row, full) or "", cell(row, lms)
        if not student and "points possible" in name.lower():
            continue  # Canvas' second row: the points each assignment is out of
        who = f"line {number}" + (f" ({shown(name, 60)})" if name else "")
        if not student:
            skipped.append(f"{who}: no login in column {login!r}: skipped; fill it in and import again")
            continue
        problem = student_id_problem(student)
        if problem:
            skipped.append(f"{who}: the login {shown(student, 60)!r} is {problem}, no usable student id: skipped")
            continue
        if user_id is not None and not (user_id.isascii() and user_id.isdigit()):
            skipped.append(f"{who}: the Canvas id {shown(user_id, 40)!r} is not a number: skipped")
            continue
        given, family = cell(row, first), cell(row, last)
        if name and not (given or family):
            given, family = _split_name(name)
        fields = [given, family, cell(row, email)]
        if any(f and len(f) > MAX_FIELD for f in fields):
            skipped.append(f"{who}: a name or email over {MAX_FIELD} characters (the gradebook's limit) was cut")
            fields = [f[:MAX_FIELD] if f else f for f in fields]
        people[number] = Person(student, *fields, user_id)
    return Roster(*_drop_conflicts(people, skipped))


def _drop_conflicts(people: dict[int, Person], skipped: list[str]) -> tuple[tuple[Person, ...], tuple[str, ...]]:
    """Rows that give one login two Canvas ids, or one Canvas id two logins, are all skipped: which one is right
    is the roster's to say. Rows of one login that agree (a student in two sections) count once, with the first
    value each field has."""
    by_login, by_id = defaultdict(list), defaultdict(set)
    for number, person in people.items():
        by_login[person.student].append(number)
        if person.lms_user_id:
            by_id[person.lms_user_id].add(person.student)
    kept = []
    for student, numbers in by_login.items():
        rows = [people[n] for n in numbers]
        ids = sorted({p.lms_user_id for p in rows if p.lms_user_id})
        logins = sorted(set().union(*(by_id[i] for i in ids))) if ids else [student]
        if len(ids) > 1 or len(logins) > 1:
            for number in numbers:
                skipped.append(f"line {number}: the login {student!r} and Canvas id {people[number].lms_user_id} "
                               f"conflict with another row (logins {logins}, Canvas ids {ids}): skipped; correct "
                               f"the roster and import it again")
            continue
        first = lambda name: next((getattr(p, name) for p in rows if getattr(p, name)), None)
        kept.append(Person(student, first("first_name"), first("last_name"), first("email"), first("lms_user_id")))
    return tuple(kept), tuple(skipped)


def _split_name(name: str) -> tuple[str | None, str | None]:
    """``"Lovelace, Ada"`` (Canvas) or ``"Ada Lovelace"`` → ``("Ada", "Lovelace")``."""
    if "," in name:
        family, given = name.split(",", 1)
    else:
        given, _, family = name.rpartition(" ")
    return given.strip() or None, family.strip() or None


def import_roster(db_url: str, people, log=print, course_root: Path | None = None,
                  confirmed: frozenset[str] = frozenset()) -> int:
    """Writes the people (a ``Roster`` or a list of ``Person``) into the gradebook: creates students, updates names,
    emails and Canvas ids (a field the roster leaves empty keeps its value), and lists the rows a ``Roster``
    skipped. When a Canvas id the roster gives is held by another student of the gradebook (a stand-in ``collect``
    made before the roster, or an earlier login), that student is merged into the roster's (``merge_student``:
    needs ``course_root``) when nothing says they are two people: the holder is a stand-in, has no name in the
    gradebook, or has the roster row's name. A named holder whose name differs (a typo in a hand-made list, a
    swapped row) keeps the id and nothing moves, unless the TA confirms that login's change (``confirmed``: the
    holders' logins, ``roster FILE --merge OLD``). Returns how many people were written.

    Raises:
        GraderError: a merge is needed but no ``course_root`` was given.
    """
    skipped, people = getattr(people, "skipped", ()), list(people)
    for line in skipped:
        log(f"roster: {line}")
    on_roster = {p.student for p in people}
    if course_root is not None:
        _make_way(Path(course_root), db_url, people, lambda line: log(f"roster: {line}"))
    holders = lms_holders(db_url)
    known = roster_of(db_url)
    stand_ins = standins(Path(course_root)) if course_root is not None else {}
    merges, cleared, refused = [], [], {}
    for person in people:
        for other in holders.get(person.lms_user_id, ()) if person.lms_user_id else ():
            if other in on_roster:
                if other != person.student and not next(p for p in people if p.student == other).lms_user_id:
                    cleared.append((other, person))  # on the roster without an id, holding this one's id
            elif other in stand_ins or other in confirmed or _same_person(known[other], person):
                merges.append((other, person.student))
            else:
                refused[person.student] = other
    for student, other in refused.items():
        person = next(p for p in people if p.student == student)
        log(f"roster: Canvas id {person.lms_user_id} is given to {student} ({_name(person)}), but the gradebook's "
            f"{other} ({_name(known[other])}) holds it: nothing moved and {student} keeps the Canvas id it had. "
            f"If the row is wrong, correct the roster and import it again; if {other} really became {student}, "
            f"import it with --merge {other}")
    people = [replace(p, lms_user_id=None) if p.student in refused else p for p in people]
    if merges and course_root is None:
        raise GraderError("Canvas ids of this roster are held by other students of the gradebook "
                          f"({', '.join(f'{a} → {b}' for a, b in merges)}): import it with the course "
                          "(python -m autograder --course DIR roster FILE) to merge them")
    with Gradebook(db_url) as gb:
        for other, person in cleared:
            gb.update_or_create_student(other, lms_user_id=None)
            log(f"roster: {other} held Canvas id {person.lms_user_id}, which the roster gives to {person.student}: "
                f"{other}'s id cleared; collect again (files collected for that id under {other} are not theirs)")
        for person in people:
            fields = {k: v for k, v in (("first_name", person.first_name), ("last_name", person.last_name),
                                        ("email", person.email), ("lms_user_id", person.lms_user_id)) if v}
            gb.update_or_create_student(person.student, **fields)
    for other, student in merges:
        merge_student(Path(course_root), db_url, other, student, lambda line: log(f"roster: {line}"))
    if course_root is not None:
        _forget_standins(Path(course_root), on_roster)
    log(f"roster: {len(people)} student(s) written to the gradebook")
    return len(people)


def _same_person(holder: Person, person: Person) -> bool:
    """Nothing says ``holder`` (in the gradebook) and the roster's ``person`` are two people: the holder has no name
    there, or the same name as the row (letters and digits, case-folded)."""
    held = name_key(f"{holder.last_name or ''}{holder.first_name or ''}")
    return not held or held == name_key(f"{person.last_name or ''}{person.first_name or ''}")


def _name(person: Person) -> str:
    return ", ".join(n for n in (person.last_name, person.first_name) if n) or "no name"


def _make_way(course_root: Path, db_url: str, people: list[Person], log) -> None:
    """A stand-in whose name is the login of another Canvas user on the roster (``zhaozoe`` named after Zoe Zhao's
    prefix, the roster's ``zhaozoe`` someone else) moves to ``<name>-<canvas id>`` first, so that neither gets the
    other's folder. A roster row without a Canvas id is the stand-in's own when its name squashes to the prefix."""
    known, taken = standins(course_root), set(roster_of(db_url)) | {p.student for p in people}
    for person in people:
        entry = known.get(person.student)
        if entry is None or person.lms_user_id == entry["canvas_id"]:
            continue
        if not person.lms_user_id and name_key(f"{person.last_name or ''}{person.first_name or ''}") == \
                name_key(entry["prefix"]):
            continue
        uid = entry["canvas_id"]
        new = next(c for c in (f"{person.student}-{uid}", f"canvas-{uid}") if c not in taken)
        taken.add(new)
        record_lms_ids(db_url, {new: uid})
        merge_student(course_root, db_url, person.student, new, log)
        record_standins(course_root, {new: entry})
        log(f"the stand-in {person.student} (Canvas id {uid}) is now {new}: the roster's {person.student} is "
            f"someone else")


def lms_holders(db_url: str) -> dict[str, list[str]]:
    """Canvas user id → the gradebook's students that hold it (one, unless the gradebook was edited by hand)."""
    holders = defaultdict(list)
    for person in roster_of(db_url).values():
        if person.lms_user_id:
            holders[person.lms_user_id].append(person.student)
    return dict(holders)


def record_lms_ids(db_url: str, ids: dict[str, str]) -> None:
    """``{student: Canvas user id}`` (what ``collect`` matched) into the gradebook."""
    with Gradebook(db_url) as gb:
        for student, user_id in ids.items():
            gb.update_or_create_student(student, lms_user_id=user_id)


def roster_of(db_url: str) -> dict[str, Person]:
    """Everyone in the gradebook, by student id."""
    with Gradebook(db_url) as gb:
        return {s.id: Person(s.id, s.first_name, s.last_name, s.email, s.lms_user_id) for s in gb.students}


def standins(course_root: Path) -> dict[str, dict]:
    """The students ``collect`` named itself, for Canvas users the roster did not know: {student: {"canvas_id",
    "prefix"}}."""
    path = Path(course_root) / STANDINS
    return json.loads(path.read_text()) if path.is_file() else {}


def record_standins(course_root: Path, new: dict[str, dict]) -> None:
    if new:
        _write_standins(Path(course_root), {**standins(course_root), **new})


def _forget_standins(course_root: Path, students: set[str]) -> None:
    known = standins(course_root)
    if known.keys() & students:
        _write_standins(course_root, {s: v for s, v in known.items() if s not in students})


def _write_standins(course_root: Path, entries: dict[str, dict]) -> None:
    path = course_root / STANDINS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2, sort_keys=True, ensure_ascii=False))


def merge_student(course_root: Path, db_url: str, old: str, new: str, log=print) -> None:
    """``old`` (a stand-in, or an earlier login of the same Canvas user) becomes ``new``: each assignment folder of
    ``submitted/<old>/`` moves to ``submitted/<new>/`` unless ``new`` has one already (theirs is kept), the derived
    folders and results of ``old`` are removed (``grade`` remakes them for ``new``), and ``old`` leaves the
    gradebook. A student with grades entered by hand is not removed: they lose the Canvas id and are listed, so the
    hand grades can be copied first."""
    for problem in (student_id_problem(old), student_id_problem(new)):
        if problem:
            raise GraderError(f"cannot merge {shown(old)!r} into {shown(new)!r}: {problem}")
    moved, kept = [], []
    source = course_root / "submitted" / old
    if source.is_dir() and not source.is_symlink():
        for folder in sorted(source.iterdir()):
            target = course_root / "submitted" / new / folder.name
            if folder.is_dir() and not folder.is_symlink() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                folder.rename(target)
                moved.append(folder.name)
            else:
                kept.append(folder.name)
        shutil.rmtree(source)
    for derived in DERIVED:
        shutil.rmtree(course_root / derived / old, ignore_errors=True)
    for result in (course_root / "grading").glob(f"*/{old}.json"):
        result.unlink()
    by_hand = _graded_by_hand(db_url, old)
    with Gradebook(db_url) as gb:
        if by_hand:
            gb.update_or_create_student(old, lms_user_id=None)
        else:
            try:
                gb.remove_student(old)
            except MissingEntry:
                pass
    _forget_standins(course_root, {old})
    words = [f"{old} merged into {new} (the same Canvas user)"]
    if moved:
        words.append(f"moved {', '.join(moved)}: grade {'them' if len(moved) > 1 else 'it'} again for {new}")
    if kept:
        words.append(f"{new}'s own {', '.join(kept)} kept, {old}'s copy dropped")
    if by_hand:
        words.append(f"{old} has grades entered by hand ({', '.join(by_hand)}): copy them to {new} in formgrader, "
                     f"then remove {old} (nbgrader db student remove {old} --force)")
    log("; ".join(words))


def _graded_by_hand(db_url: str, student: str) -> list[str]:
    with Gradebook(db_url) as gb:
        try:
            submissions = gb.find_student(student).submissions
        except MissingEntry:
            return []
        return sorted({s.assignment.name for s in submissions for nb in s.notebooks
                       if any(g.manual_score is not None for g in nb.grades)
                       or any(c.manual_comment for c in nb.comments)})
