"""What ``collect`` does with each entry of a Canvas "Download Submissions" zip, decided from the zip's directory
(names and sizes; no data is read but ``timestamps.csv``) and the gradebook, before anything is written.

Each name is validated (``autograder.safe_unzip.name_problem``) and parsed (``autograder.canvas_names``); an entry
named twice, a link, a set-uid file or a type that is not graded is refused with the reason; of the uploads of one
file name by one student (``hw.ipynb``, ``hw-1.ipynb``) the newest is kept; each Canvas user id is matched to a
student (``match_students``).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder import canvas_names
from autograder.course import Course
from autograder.errors import GraderError
from autograder.roster import Person, roster_of, standins, student_id_problem
from autograder.safe_unzip import Limits, member_name, member_problem, name_problem, shown

VALID_EXT = (".ipynb", ".pt", ".json")  # what the assignments hand in
ARCHIVE_EXT = ".zip"  # a student's own archive, unpacked into their folder only
TIMESTAMPS = "timestamps.csv"
MAX_TIMESTAMPS_BYTES = 1024**2


def has_ext(ext: str, name: str) -> bool:
    return name.lower().endswith(ext)


@dataclass(frozen=True)
class Match:
    """Whom a Canvas user's files go to. ``how``: ``canvas id`` (the roster gave it), ``name`` (a roster student
    without a Canvas id whose name Canvas squashed into the prefix), ``stand-in`` (not on the roster: a name collect
    chose, at this or an earlier collect)."""

    student: str
    how: str
    replaces: str | None = None  # a stand-in of an earlier collect, merged into ``student`` (the roster's)


def match_students(users: dict[str, list[str]], people: dict[str, Person], known_standins: dict[str, dict]
                   ) -> tuple[dict[str, Match], dict[str, str]]:
    """Each Canvas user id of the export (with the prefixes its files carry) → a ``Match``, or the reason its files
    are not collected. Never gives a Canvas id that a student holds to anyone else, nor two ids one student; an id
    held by a stand-in goes to the roster student whose name matches, replacing the stand-in."""
    holders = defaultdict(list)
    for person in people.values():
        if person.lms_user_id:
            holders[person.lms_user_id].append(person.student)
    by_name = defaultdict(set)  # name key → roster students without a Canvas id
    for person in people.values():
        if not person.lms_user_id and person.student not in known_standins and (person.last_name or person.first_name):
            full = f"{person.last_name or ''}{person.first_name or ''}"
            for key in {canvas_names.name_key(full), canvas_names.name_key(full, ascii_only=True)} - {""}:
                by_name[key].add(person.student)
    keys = {uid: {canvas_names.name_key(p) for p in prefixes} - {""} for uid, prefixes in users.items()}
    standing_in = lambda uid: len(holders.get(uid, [])) == 1 and holders[uid][0] in known_standins
    open_ids = [uid for uid in users if uid not in holders or standing_in(uid)]
    claims = Counter(student for uid in open_ids
                     for student in {s for k in keys[uid] if len(by_name[k]) == 1 for s in by_name[k]})
    matches, problems, taken = {}, {}, set(people)
    for uid in sorted(users, key=int):
        held = holders.get(uid, [])
        if len(held) > 1:
            problems[uid] = (f"Canvas id {uid} is held by {', '.join(held)} in the gradebook: import the roster "
                             f"again (it merges them) or remove the wrong one (nbgrader db student remove)")
            continue
        if held and not standing_in(uid):
            matches[uid] = Match(held[0], "canvas id")
            continue
        named = {s for k in keys[uid] if len(by_name[k]) == 1 for s in by_name[k]}
        if len(named) == 1 and claims[next(iter(named))] == 1:
            matches[uid] = Match(named.pop(), "name", held[0] if held else None)
            continue
        if held:
            matches[uid] = Match(held[0], "stand-in")
            continue
        prefix = users[uid][0].lower()
        candidate = next((c for c in (prefix, f"{prefix}-{uid}", f"canvas-{uid}")
                          if not student_id_problem(c) and c not in taken), None)
        if candidate is None:
            problems[uid] = f"no free student id for Canvas id {uid}: add them to the roster"
            continue
        taken.add(candidate)
        matches[uid] = Match(candidate, "stand-in")
    for uid, match in matches.items():
        problem = student_id_problem(match.student)
        if problem:
            problems[uid] = f"the gradebook's student id {shown(match.student)!r} is {problem}: fix it there"
    return {u: m for u, m in matches.items() if u not in problems}, problems


def _student_keys(matches: dict[str, Match], users: dict[str, list[str]]) -> dict[str, set[str]]:
    """What ``timestamps.csv`` may name a student by → the students it names: a login or a Canvas id names whom it
    belongs to; a prefix (a display name, which a student may set to a classmate's login) only when no login or
    Canvas id is spelled so. A key that names two students is used for neither."""
    exact, prefixes = defaultdict(set), defaultdict(set)
    for uid, match in matches.items():
        exact[uid].add(match.student)
        exact[match.student].add(match.student)
        for prefix in users[uid]:
            prefixes[prefix.lower()].add(match.student)
    return {**{k: v for k, v in prefixes.items() if k not in exact}, **exact}


def _timestamps(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None, keys: dict[str, set[str]]
                ) -> tuple[dict[str, str], list[str]]:
    """``timestamps.csv`` → {student: UTC ISO time}; rows that name nobody or hold no time are listed."""
    from nbgrader.utils import parse_utc

    if info is None:
        return {}, []
    if info.file_size > MAX_TIMESTAMPS_BYTES:
        return {}, [f"{TIMESTAMPS} is over {MAX_TIMESTAMPS_BYTES:,} bytes: not read"]
    stamps, problems = {}, []
    try:
        rows = list(csv.DictReader(io.StringIO(archive.read(info).decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error, zipfile.BadZipFile) as err:
        return {}, [f"{TIMESTAMPS} is not a readable CSV file ({err})"]
    for number, row in enumerate(rows, start=2):
        who, when = (row.get("student_id") or "").strip().lower(), (row.get("timestamp") or "").strip()
        named = sorted(keys.get(who, ()))
        if len(named) != 1:
            problems.append(f"{TIMESTAMPS}, line {number}: {shown(who, 60)!r} " + (
                f"names {', '.join(named)}: not used; name each student by login" if named else
                "has no collected submission"))
            continue
        student = named[0]
        try:
            stamps[student] = parse_utc(when).isoformat()
        except (ValueError, OverflowError, TypeError) as err:
            problems.append(f"{TIMESTAMPS}, line {number}: {shown(when, 60)!r} is no time ({err})")
    return stamps, problems


AMBIGUOUS = "ambiguous"


def _ambiguity(name: str) -> str | None:
    """Why ``name`` cannot be given to one Canvas user (``canvas_names.readings``), or ``None``."""
    found = canvas_names.readings(name)
    if len({r.user_id for r in found}) < 2:
        return None
    return (f"{AMBIGUOUS}: the name reads as " + ", and as ".join(
        f"Canvas user {r.user_id}'s {shown(r.uploaded, 60)!r}" for r in found) + " (a sortable name that ends in "
        "digits, or an upload named with them): not collected; find in Canvas whose file it is and ask them to "
        "upload it under another name")


def _sort_entries(infos: list[zipfile.ZipInfo]):
    """Each entry of the export → a candidate (index, name, CanvasName), a refused row, an unmatched name, or the
    ``timestamps.csv`` entry; folders are passed over."""
    names = [member_name(i) for i in infos]
    repeated = Counter(names)
    candidates, refused, unmatched, stamps = [], [], [], None
    for index, (info, name) in enumerate(zip(infos, names)):
        if info.is_dir():
            continue
        if name == TIMESTAMPS and repeated[name] == 1:
            stamps = info
            continue
        parsed = None if name_problem(name) else canvas_names.parse(name)
        reason = (name_problem(name) or (parsed and _ambiguity(name))
                  or (f"appears {repeated[name]} times in the export: none is collected; download the submissions "
                      f"again" if repeated[name] > 1 else None)
                  or (parsed and (member_problem(info) or name_problem(parsed.file)))
                  or (parsed and not (has_ext(ARCHIVE_EXT, parsed.file) or any(has_ext(e, parsed.file)
                                                                               for e in VALID_EXT))
                      and f"not collected: only {', '.join(VALID_EXT)} files are graded (and {ARCHIVE_EXT} "
                          f"archives of them unpacked)"))
        if reason:
            owner = parsed.user_id if parsed and not reason.startswith(AMBIGUOUS) else None
            refused.append({"entry": shown(name), "canvas_id": owner, "reason": reason})
        elif parsed:
            candidates.append((index, name, parsed))
        else:
            unmatched.append(shown(name))
    return candidates, refused, unmatched, stamps


def _newest(candidates: list) -> tuple[list, list[dict]]:
    """Of the uploads of one file name by one Canvas user, the newest (Canvas's copy number, then the upload's
    id); the others as superseded rows."""
    uploads = defaultdict(list)
    for candidate in candidates:
        uploads[(candidate[2].user_id, candidate[2].file)].append(candidate)
    newest, superseded = [], []
    for group in uploads.values():
        group.sort(key=lambda c: (c[2].copy, c[2].file_id))
        newest.append(group[-1])
        superseded += [{"entry": shown(name), "kept": shown(group[-1][1]), "canvas_id": parsed.user_id}
                       for _, name, parsed in group[:-1]]
    return sorted(newest, key=lambda c: (int(c[2].user_id), has_ext(ARCHIVE_EXT, c[2].file), c[2].file)), superseded


def plan(course: Course, zip_path: Path, limits: Limits = Limits()) -> dict:
    """What collect will do with each entry of ``zip_path``, from the zip's directory and the gradebook: the entries
    to unpack (files first, then each student's archives), whom each Canvas id goes to and how, submission times,
    and the rows of the report (refused, unmatched, superseded, notes)."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as err:
        raise GraderError(f"{zip_path} is not a zip file ({err}): download the submissions from Canvas again")
    with archive:
        infos = archive.infolist()
        candidates, refused, unmatched, stamps_info = _sort_entries(infos)
        newest, superseded = _newest(candidates)
        declared = defaultdict(int)  # Canvas id → what its files declare; each student writes their allowance at most
        for index, _, parsed in newest:
            declared[parsed.user_id] += infos[index].file_size
        total = sum(min(size, limits.student_bytes) for size in declared.values())
        if total > limits.export_bytes:
            raise GraderError(f"{zip_path} unpacks to {total:,} bytes (each student's files counted up to their "
                              f"{limits.student_bytes:,}-byte allowance), over the {limits.export_bytes:,} an export "
                              f"may (autograder.safe_unzip.Limits): check it is the submissions export")
        users = defaultdict(list)  # Canvas id → the prefixes its files carry, in the export's order
        for _, _, parsed in sorted(newest, key=lambda c: c[0]):
            if parsed.prefix not in users[parsed.user_id]:
                users[parsed.user_id].append(parsed.prefix)
        matches, problems = match_students(dict(users), roster_of(course.db_url), standins(course.root))
        stamps, notes = _timestamps(archive, stamps_info, _student_keys(matches, users))
    entries = []
    for index, name, parsed in newest:
        if parsed.user_id in problems:
            refused.append({"entry": shown(name), "canvas_id": parsed.user_id, "reason": problems[parsed.user_id]})
        else:
            entries.append({"index": index, "entry": name, "canvas_id": parsed.user_id, "file": parsed.file,
                            "archive": has_ext(ARCHIVE_EXT, parsed.file), "late": parsed.late,
                            "file_id": parsed.file_id, "copy": parsed.copy})
    for row in superseded + refused:
        row["student"] = matches[row["canvas_id"]].student if row["canvas_id"] in matches else None
    return {"zip": zip_path.name, "limits": asdict(limits), "entries": entries,
            "students": {uid: m.student for uid, m in matches.items()},
            "matched_by": {uid: m.how for uid, m in matches.items()},
            "replaces": {uid: m.replaces for uid, m in matches.items() if m.replaces},
            "prefixes": {uid: users[uid] for uid in matches}, "timestamps": stamps,
            "refused": refused, "unmatched": unmatched, "superseded": superseded, "notes": notes,
            "has_timestamps": stamps_info is not None}
