"""The class roster in the gradebook: names, emails and LMS user ids, so that formgrader and the exports show people.

Two sources, both from Canvas:

- ``collect`` records each student's Canvas user id, which the file names of a "Download Submissions" zip carry
  (``<login>[_LATE]_<user id>_<submission id>_<file>``): ``record_lms_ids``;
- ``python -m autograder roster <file.csv>`` imports names and emails from a roster CSV (``import_roster``):
  Canvas' gradebook export (``Student`` as "Last, First", ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``;
  it has no emails) or a people list with ``login``/``email``/``first_name``/``last_name`` columns; column names are
  matched without regard to case.

The export's Canvas import file (``autograder.export.canvas_csv``) takes its ``Student`` and ``ID`` columns from
here: Canvas matches rows on ``ID``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook

from autograder.errors import GraderError

LOGIN_COLUMNS = ("sis login id", "login", "login_id", "student_id", "username", "id_login")
LMS_ID_COLUMNS = ("id", "user id", "canvas user id", "lms_user_id")
EMAIL_COLUMNS = ("email", "e-mail", "email address")


@dataclass(frozen=True)
class Person:
    """One roster row: the student's id in the course (their LMS login, lower case) and what the gradebook shows."""

    student: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    lms_user_id: str | None = None


def _column(header: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((header[n] for n in names if n in header), None)


def read_roster(path: Path) -> list[Person]:
    """The people of a roster CSV (see the module's docstring for the accepted columns).

    Raises:
        GraderError: the file is missing, not a CSV, has no login column, or a row has no login.
    """
    path = Path(path)
    if not path.is_file():
        raise GraderError(f"no roster file at {path}: export the gradebook (or the people list) from the LMS as CSV")
    try:
        text = path.read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
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
    people = []
    for number, row in enumerate(rows, start=2):
        student = (cell(row, login) or "").lower()
        name = cell(row, full) or ""
        if not student and "points possible" in name.lower():
            continue  # Canvas' second row: the points each assignment is out of
        if not student:
            raise GraderError(f"{path}, line {number}: no login in column {login!r}; fix the row or remove it")
        given, family = cell(row, first), cell(row, last)
        if name and not (given or family):
            given, family = _split_name(name)
        people.append(Person(student, given, family, cell(row, email), cell(row, lms)))
    return people


def _split_name(name: str) -> tuple[str | None, str | None]:
    """``"Lovelace, Ada"`` (Canvas) or ``"Ada Lovelace"`` → ``("Ada", "Lovelace")``."""
    if "," in name:
        family, given = name.split(",", 1)
    else:
        given, _, family = name.rpartition(" ")
    return given.strip() or None, family.strip() or None


def import_roster(db_url: str, people: list[Person], log=print) -> int:
    """Writes the people into the gradebook (creating students, updating names, emails and LMS ids; a field the
    roster leaves empty keeps its value). Returns how many were written."""
    with Gradebook(db_url) as gb:
        for person in people:
            fields = {k: v for k, v in (("first_name", person.first_name), ("last_name", person.last_name),
                                        ("email", person.email), ("lms_user_id", person.lms_user_id)) if v}
            gb.update_or_create_student(person.student, **fields)
    log(f"roster: {len(people)} student(s) written to the gradebook")
    return len(people)


def record_lms_ids(db_url: str, ids: dict[str, str]) -> None:
    """``{student: LMS user id}`` (from the export's file names) into the gradebook."""
    import_roster(db_url, [Person(student, lms_user_id=user_id) for student, user_id in ids.items()], log=lambda *_: None)


def roster_of(db_url: str) -> dict[str, Person]:
    """Everyone in the gradebook, by student id."""
    with Gradebook(db_url) as gb:
        return {s.id: Person(s.id, s.first_name, s.last_name, s.email, s.lms_user_id) for s in gb.students}
