"""``collect`` on Canvas exports named as Canvas names them (``autograder.collect``, ``canvas_export``,
``canvas_names``, ``safe_unzip``): each file goes to the student the Canvas id names, whatever the prefix; no entry
of one student's upload reaches another's folder, leaves ``submitted/``, keeps its permission bits or unpacks past
the cap; every entry that is not collected is listed, and the rest of the class is collected."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import unicodedata
import warnings
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from nbgrader.api import Gradebook

from autograder import canvas_names
from autograder.collect import collect
from autograder.course import Course
from autograder.export import canvas_csv, scores_table
from autograder.roster import Person, import_roster, read_roster, roster_of
from autograder.safe_unzip import Budget, Limits, Refused, name_problem, write_member

REPO = Path(__file__).resolve().parents[1]
A = "segmentation_hw"
CAP = 16 * 1024**2  # the class's allowance per student in these tests (the default is 1 GiB)
NON_WORD = re.compile(r"[^\w]")  # Ruby's [^[[:word:]]] for these names: Unicode letters and digits and _ stay


def canvas_file_name(sortable: str, user_id: int, file_id: int, uploaded: str, late: bool = False) -> str:
    """As Canvas names a file of "Download Submissions" (``ContentZipper#get_filename``): the sortable name
    without ``_<digits>_``, ``LATE`` when late, the user id, joined by ``_``, every non-word character removed,
    lower-cased; then the uploaded file's id and its name."""
    name = re.sub(r"_(\d+)_", r"\1", unicodedata.normalize("NFC", sortable))
    head = "_".join(part for part in (name, "LATE" if late else None, str(user_id)) if part)
    return f"{NON_WORD.sub('', head).lower()}_{file_id}_{uploaded}"


def member(name: str, mode: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2026, 12, 1, 20, 15, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.external_attr = mode << 16
    return info


def zip_bytes(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": an entry named twice is one of the cases
        for name, data in entries:
            archive.writestr(name if isinstance(name, zipfile.ZipInfo) else member(name), data)
    return buffer.getvalue()


def notebook(text: str) -> bytes:
    return ('{"cells": [], "metadata": {"note": "%s"}, "nbformat": 4, "nbformat_minor": 5}' % text).encode()


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> Path:
    """One new gradebook (nbgrader runs alembic to make one), copied into each course."""
    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
        Gradebook(f"sqlite:///{path}").close()
    return path


def new_course(root: Path, gradebook: Path) -> Course:
    root.mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copy(gradebook, root / "gradebook.db")
    return Course(root.resolve())


def write_roster(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """Canvas' gradebook export: ``Student`` ("Last, First"), ``ID``, ``SIS User ID``, ``SIS Login ID``."""
    lines = ["Student,ID,SIS User ID,SIS Login ID,Section", "    Points Possible,,,,"]
    lines += [f'"{name}",{user_id},{login},{login},CV-101' for name, user_id, login in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("sortable", ["Okafor, Ben", "Müller, Jörg", "O'Brien-Smith, Seán", "Straße, Jürgen",
                                      "Nguyễn, Thị Minh", "Þórsdóttir, Björk", "van der Berg_2_, Anna"])
@pytest.mark.parametrize("late", [False, True])
def test_names_built_as_canvas_builds_them_give_the_user_id_the_file_and_the_late_marker(sortable, late):
    name = canvas_file_name(sortable, 1001, 57321, "segmentation_hw.ipynb", late)
    parsed = canvas_names.parse(name)
    assert (parsed.user_id, parsed.file_id, parsed.file, parsed.late, parsed.copy) == (
        "1001", 57321, "segmentation_hw.ipynb", late, 0)
    family, given = sortable.split(", ")
    assert canvas_names.name_key(parsed.prefix) == canvas_names.name_key(family + given)


@pytest.mark.parametrize("name, prefix, late, uploaded, file, copy", [
    ("okaforben_LATE_1001_57321_segmentation_hw.ipynb", "okaforben", True, "segmentation_hw.ipynb",
     "segmentation_hw.ipynb", 0),
    ("okafor--ben-late_1001_57321_segmentation_hw.ipynb", "okafor--ben", True, "segmentation_hw.ipynb",  # older Canvas
     "segmentation_hw.ipynb", 0),
    ("o'brien-smithseán_1003_9_segmentation_hw-1.ipynb", "o'brien-smithseán", False, "segmentation_hw-1.ipynb",
     "segmentation_hw.ipynb", 1),
    ("mu\u0308llerjo\u0308rg_1002_9_segmentation_hw_checkpoint-12.pt", "müllerjörg", False,  # NFD, as macOS writes
     "segmentation_hw_checkpoint-12.pt", "segmentation_hw_checkpoint.pt", 12),
    ("late_1005_9_notes-3.v2.json", "late", False, "notes-3.v2.json", "notes.v2.json", 3),  # ext: ".v2.json"
    ("ab_1005_9_hw-0a1b2c3d-1111-2222-3333-444455556666.ipynb", "ab", False,
     "hw-0a1b2c3d-1111-2222-3333-444455556666.ipynb", "hw.ipynb", 8),  # Canvas's eighth copy and later: a UUID
    ("okaforben_1001_57321_1000_5000_hw.ipynb", "okaforben", False, "1000_5000_hw.ipynb", "1000_5000_hw.ipynb", 0),
])
def test_canvas_names_parse(name, prefix, late, uploaded, file, copy):
    parsed = canvas_names.parse(name)
    assert (parsed.prefix, parsed.late, parsed.uploaded, parsed.file, parsed.copy) == (prefix, late, uploaded, file,
                                                                                         copy)


@pytest.mark.parametrize("name", ["readme_from_lms.txt", "okaforben_1001_segmentation_hw.ipynb",
                                  "okaforben_\u0661\u0660\u0660\u0661_5_hw.ipynb",  # Arabic-Indic digits
                                  "a/b_1001_5_hw.ipynb", "a b_1001_5_hw.ipynb", "timestamps.csv"])
def test_names_that_are_not_canvas_names(name):
    assert canvas_names.parse(name) is None


@pytest.mark.parametrize("name, problem", [
    (".", "the name '.'"), ("..", "the name '..'"), ("a/b", "path separator"), ("a\\b", "path separator"),
    ("a\x00b", "NUL, control"), ("a\x1b[31mb", "NUL, control"), ("a\u202eb", "invisible formatting"),
    (".bashrc", "hidden"), ("é" * 128, "over 255 bytes"), ("", "empty"),
])
def test_names_that_are_never_written(name, problem):
    assert problem in name_problem(name)


@pytest.mark.parametrize("name", ["segmentation_hw.ipynb", "müllerjörg", "o'brien-smith", "x" * 255])
def test_names_that_are_written(name):
    assert name_problem(name) is None


def test_a_zip_bomb_stops_at_the_cap_whether_it_declares_its_size_or_lies(tmp_path):
    bomb = zip_bytes([("segmentation_hw_checkpoint.pt", bytes(64 * 1024**2))])  # 64 MB of zeros in about 64 KB
    assert len(bomb) < 200_000
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        with pytest.raises(Refused, match=r"unpacks to 67,108,864 bytes, past .* 16,777,216-byte allowance"):
            write_member(archive, archive.infolist()[0], tmp_path / "a.pt", Budget(CAP, 10))
    assert not (tmp_path / "a.pt").exists()
    lying = bytearray(bomb)  # the central directory's uncompressed size says 1,000 bytes
    central = lying.rindex(b"PK\x01\x02")
    lying[central + 24:central + 28] = (1000).to_bytes(4, "little")
    with zipfile.ZipFile(io.BytesIO(bytes(lying))) as archive:
        with pytest.raises(Refused, match="unreadable"):
            write_member(archive, archive.infolist()[0], tmp_path / "b.pt", Budget(CAP, 10))
    assert not (tmp_path / "b.pt").exists()


def test_matching_never_gives_a_held_canvas_id_to_anyone_else_and_guesses_no_ambiguous_name():
    from autograder.canvas_export import Match, match_students

    people = {p.student: p for p in [
        Person("ben", "Ben", "Okafor", lms_user_id="1001"),
        Person("wei1", "Wei", "Wang"), Person("wei2", "Wei", "Wang"),  # two roster students of one name, no ids
        Person("ada", "Ada", "Lovelace"),
        Person("twice", lms_user_id="1010"), Person("twice-too", lms_user_id="1010"),  # a gradebook edited by hand
        Person("okaforben", lms_user_id="1011"),  # a login that is some other student's prefix
        Person("lindqvistcara", lms_user_id="1012"),  # a stand-in of an earlier collect
        Person("cara", "Cara", "Lindqvist"),  # ... whom the roster now names (without her id)
    ]}
    users = {"1001": ["byronben"], "1002": ["wangwei"], "1003": ["lovelaceada"], "1004": ["lovelaceada"],
             "1010": ["x"], "1020": ["okaforben"], "1021": ["-dash"], "1012": ["lindqvistcara"]}
    matches, problems = match_students(users, people, {"lindqvistcara": {"canvas_id": "1012"}})
    assert matches["1001"].student == "ben"  # the id, whatever the prefix
    assert matches["1002"] == Match("wangwei", "stand-in")  # two Wangs on the roster: no guess
    assert {matches["1003"].student, matches["1004"].student} == {"lovelaceada", "lovelaceada-1004"}  # nor here
    assert "held by twice, twice-too" in problems["1010"] and "1010" not in matches
    assert matches["1020"].student == "okaforben-1020"  # never into another student's folder
    assert matches["1021"].student == "canvas-1021"
    assert (matches["1012"].student, matches["1012"].how, matches["1012"].replaces) == ("cara", "name",
                                                                                        "lindqvistcara")
    assert len({m.student for m in matches.values()}) == len(matches)


# ------------------------------------------------------------------------------------ a class, as Canvas exports it

ROSTER = [  # (sortable name, Canvas id, login)
    ("Okafor, Ben", "1001", "ben"),
    ("Müller, Jörg", "1002", "joerg"),
    ("O'Brien-Smith, Seán", "1003", "sean"),
    ("Straße, Jürgen", "1004", "juergen"),
    ("Lovelace, Ada", "", "ada"),  # a people list without her Canvas id: matched by her name
    ("Raman, Dev", "1006", "dev"),  # hands in nothing
    ("Evil, Dot", "1007", ".."),  # a login that is no folder name: the row is skipped
]
OUTSIDE = "escape_from_submitted.ipynb"


def class_export(path: Path) -> dict[str, bytes]:
    """The class's Canvas zip; returns the bytes of the files whose fate the tests check."""
    ben = lambda fid, uploaded, **kw: canvas_file_name("Okafor, Ben", 1001, fid, uploaded, **kw)
    zoe = lambda fid, uploaded: canvas_file_name("Zhao, Zoe", 1099, fid, uploaded)  # not on the roster
    files = {"ben_old": notebook("ben, first upload"), "ben_new": notebook("ben, uploaded again"),
             "ada": notebook("ada"), "classmate_attack": b"weights that would give ada 23 points",
             "results": b'{"metrics": {"miou": 0.5}}', "open": b'{"mode": "0777 in the zip"}'}
    bens_zip = zip_bytes([  # what ben uploaded as extras.zip
        (canvas_file_name("Lovelace, Ada", 1005, 9, "segmentation_hw_checkpoint.pt"), files["classmate_attack"]),
        ("phantom_9999_1_segmentation_hw.ipynb", notebook("a student nobody enrolled")),
        (f"../../../../{OUTSIDE}", notebook("outside")), (f"/tmp/{OUTSIDE}", notebook("absolute")),
        ("inner.zip", zip_bytes([("segmentation_hw.ipynb", notebook("nested twice"))])),
        ("work/segmentation_hw_results.json", files["results"]),
        (member("setuid.json", 0o104755), b"{}"), (member("open.json", 0o100777), files["open"]),
        (member("link.json", 0o120777), b"/etc/passwd"),
    ])
    seans_bomb = zip_bytes([("segmentation_hw_checkpoint.pt", bytes(64 * 1024**2))])
    entries = [
        (ben(57321, "segmentation_hw.ipynb"), files["ben_old"]),
        (ben(57400, "segmentation_hw-1.ipynb"), files["ben_new"]),
        (ben(57401, "extras.zip"), bens_zip),
        (member(ben(57402, "segmentation_hw_nodown_checkpoint.pt"), 0o104755), b"set-uid weights"),
        (canvas_file_name("Müller, Jörg", 1002, 6001, "segmentation_hw.ipynb", late=True), notebook("joerg")),
        (member(canvas_file_name("Müller, Jörg", 1002, 6002, "segmentation_hw_checkpoint.pt", late=True), 0o100777),
         b"joerg's weights"),
        ("o'brien-smithseán_1003_7001_segmentation_hw.ipynb", notebook("sean")),  # a Canvas that keeps ' and -
        ("o'brien-smithseán_1003_7002_bomb.zip", seans_bomb),
        ("straßejürgen_LATE_1004_8001_segmentation_hw.ipynb", notebook("juergen")),
        (canvas_file_name("Lovelace, Ada", 1005, 5001, "segmentation_hw.ipynb"), files["ada"]),
        (canvas_file_name("Evil, Dot", 1007, 4001, "segmentation_hw.ipynb"), notebook("dot")),
        (zoe(3001, "segmentation_hw.ipynb"), notebook("zoe")),
        (zoe(3002, "segmentation_hw_results.json"), b"{}"),
        (zoe(3002, "segmentation_hw_results.json"), b"{}"),  # the same name twice
        (zoe(3003, "x" * 260 + ".json"), b"{}"),
        (f"x/../{zoe(3004, 'evil.ipynb')}", b"{}"),
        (zoe(3005, "evil.ipynbXsecret"), b"{}"),  # X becomes NUL below
        (zoe(3006, "\x1b[2Jclear.ipynb"), b"{}"),
        (member(zoe(3007, "link.json"), 0o120777), b"/etc/passwd"),
        (zoe(3008, "notes.txt"), b"not graded"),
        ("readme_from_lms.txt", b"a stray file that belongs to nobody"),
        ("timestamps.csv", b"student_id,timestamp\nben,2026-12-01 20:15:00 UTC\n1099,2026-12-02T10:00:00+01:00\n"
                           b"nobody,2026-12-01 20:15:00 UTC\nsean,not a time\n"),
    ]
    data = bytearray(zip_bytes(entries))
    data = data.replace(b"evil.ipynbXsecret", b"evil.ipynb\x00secret")  # local and central headers alike
    path.write_bytes(bytes(data))
    return files


@pytest.fixture(scope="module")
def collected(tmp_path_factory, empty_gradebook):
    root = tmp_path_factory.mktemp("canvas")
    course = new_course(root / "course", empty_gradebook)
    roster = read_roster(write_roster(root / "roster.csv", ROSTER))
    files = class_export(root / "canvas.zip")
    lines = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
        import_roster(course.db_url, roster, log=lines.append, course_root=course.root)
        report = collect(course, A, root / "canvas.zip", log=lines.append, limits=Limits(student_bytes=CAP))
    return course, report, files, "\n".join(lines)


def refused(report, student=None) -> dict[str, str]:
    return {row["entry"]: row["reason"] for row in report["refused"] if student is None or row["student"] == student}


def test_each_file_goes_to_the_login_of_its_canvas_id(collected):
    course, report, _, log = collected
    assert report["students"] == ["ada", "ben", "evildot", "joerg", "juergen", "sean", "zhaozoe"]
    assert sorted(p.name for p in (course.root / "submitted").iterdir()) == report["students"]
    people = roster_of(course.db_url)
    assert {p.lms_user_id for p in people.values()} == {"1001", "1002", "1003", "1004", "1005", "1006", "1007",
                                                         "1099"}
    assert len([p for p in people.values() if p.lms_user_id]) == 8  # one student per Canvas id
    assert people["ada"].lms_user_id == "1005" and report["submissions"]["ada"]["matched_by"] == "name"
    assert {s: sub["matched_by"] for s, sub in report["submissions"].items() if s != "ada"} == {
        "ben": "canvas id", "joerg": "canvas id", "sean": "canvas id", "juergen": "canvas id",
        "evildot": "stand-in", "zhaozoe": "stand-in"}
    assert report["submissions"]["sean"]["prefixes"] == ["o'brien-smithseán"]
    assert "the login '..' is the name '..'" in log  # the roster's bad row, listed


def test_students_off_the_roster_are_collected_under_a_stand_in_and_roster_students_without_work_listed(collected):
    _, report, _, log = collected
    assert report["roster"] == 6 and report["assumption"] is None
    assert [(r["student"], r["canvas_id"]) for r in report["not_on_roster"]] == [("evildot", "1007"),
                                                                                 ("zhaozoe", "1099")]
    assert report["roster_without_submission"] == ["dev"]
    assert "not on the roster: Canvas id 1099 (zhaozoe) collected as 'zhaozoe'" in log
    assert "on the roster, no submission: dev" in log


def test_a_resubmission_keeps_the_newest_upload_and_says_so(collected):
    course, report, files, log = collected
    assert (course.root / "submitted" / "ben" / A / f"{A}.ipynb").read_bytes() == files["ben_new"]
    assert [(r["student"], r["entry"], r["kept"]) for r in report["superseded"]] == [
        ("ben", "okaforben_1001_57321_segmentation_hw.ipynb", "okaforben_1001_57400_segmentation_hw-1.ipynb")]
    assert "ben: kept the newest upload okaforben_1001_57400_segmentation_hw-1.ipynb" in log
    ben = {f["file"]: f for f in report["submissions"]["ben"]["files"]}
    assert (ben[f"{A}.ipynb"]["copy"], ben[f"{A}.ipynb"]["file_id"]) == (1, 57400)


def test_canvas_late_markers_and_submission_times_are_recorded_per_file(collected):
    course, report, files, _ = collected
    assert report["marked_late_by_lms"] == ["joerg", "juergen"]
    joerg = report["submissions"]["joerg"]
    assert joerg["late"] and all(f["late"] for f in joerg["files"]) and joerg["submitted_at"] is None
    ben = report["submissions"]["ben"]
    assert ben["submitted_at"] == "2026-12-01T20:15:00+00:00" and not ben["late"]
    assert (course.root / "submitted" / "ben" / A / "timestamp.txt").read_text() == "2026-12-01 20:15:00"
    assert (course.root / "submitted" / "zhaozoe" / A / "timestamp.txt").read_text() == "2026-12-02 09:00:00"
    assert report["timestamps"] == 2
    assert any("'nobody' has no collected submission" in n for n in report["notes"])
    assert any("'not a time' is no time" in n for n in report["notes"])
    ada = report["submissions"]["ada"]["files"][0]
    assert ada["sha256"] == hashlib.sha256(files["ada"]).hexdigest() and ada["bytes"] == len(files["ada"])
    assert (report["submissions"]["ada"]["canvas_id"], ada["file_id"], ada["from_archive"]) == ("1005", 5001, None)


def test_a_students_archive_reaches_only_their_own_folder(collected):
    course, report, files, _ = collected
    ben = course.root / "submitted" / "ben" / A
    ada = course.root / "submitted" / "ada" / A
    assert sorted(p.name for p in ada.iterdir()) == [f"{A}.ipynb"]  # the classmate attack stayed in ben's folder
    assert (ben / canvas_file_name("Lovelace, Ada", 1005, 9, f"{A}_checkpoint.pt")).read_bytes() == \
        files["classmate_attack"]
    assert (ben / f"{A}_results.json").read_bytes() == files["results"]  # work/... unpacked flat
    assert (ben / "phantom_9999_1_segmentation_hw.ipynb").is_file()  # a file of ben's, no student "phantom"
    assert not list(course.root.parent.rglob(OUTSIDE)), "an archive wrote outside submitted/"
    reasons = refused(report, "ben")
    assert "a path that leaves its folder" in reasons[f"okaforben_1001_57401_extras.zip → ../../../../{OUTSIDE}"]
    assert "a path that leaves its folder" in reasons[f"okaforben_1001_57401_extras.zip → /tmp/{OUTSIDE}"]
    assert "an archive inside an uploaded archive" in reasons["okaforben_1001_57401_extras.zip → inner.zip"]
    assert "a link" in reasons["okaforben_1001_57401_extras.zip → link.json"]
    extras = [f for f in report["submissions"]["ben"]["files"] if f["from_archive"]]
    assert {f["member"] for f in extras} >= {"work/segmentation_hw_results.json", "open.json"}


def test_no_permission_bit_of_the_zip_is_applied(collected):
    course, report, _, _ = collected
    reasons = refused(report)
    assert "set-uid" in reasons["okaforben_1001_57402_segmentation_hw_nodown_checkpoint.pt"]
    assert "set-uid" in reasons["okaforben_1001_57401_extras.zip → setuid.json"]
    modes = {p.relative_to(course.root): stat.S_IMODE(p.lstat().st_mode)
             for p in (course.root / "submitted").rglob("*")}
    assert all(mode == (0o755 if (course.root / path).is_dir() else 0o644) for path, mode in modes.items()), modes
    assert not any((course.root / p).is_symlink() for p in modes)
    assert (course.root / "submitted" / "joerg" / A / f"{A}_checkpoint.pt").read_bytes() == b"joerg's weights"


def test_a_nested_archive_that_unpacks_past_the_cap_stops_there_and_the_rest_of_the_student_is_collected(collected):
    course, report, _, _ = collected
    sean = course.root / "submitted" / "sean" / A
    assert sorted(p.name for p in sean.iterdir()) == [f"{A}.ipynb"]
    reason = refused(report, "sean")[f"o'brien-smithseán_1003_7002_bomb.zip → {A}_checkpoint.pt"]
    assert "past what is left of the student's" in reason
    assert sum(p.stat().st_size for p in (course.root / "downloaded").rglob("*") if p.is_file()) < 4 * CAP


def test_bad_entries_are_listed_and_the_rest_of_the_class_is_collected(collected):
    course, report, _, log = collected
    reasons = refused(report)
    zoe = "zhaozoe_1099_"
    assert reasons[f"{zoe}3002_segmentation_hw_results.json"].startswith("appears 2 times in the export")
    assert [r["entry"] for r in report["refused"]].count(f"{zoe}3002_segmentation_hw_results.json") == 2
    assert any("over 255 bytes" in reason and entry.startswith(zoe + "3003_xxx") for entry, reason in reasons.items())
    assert "path separator" in reasons[f"x/../{zoe}3004_evil.ipynb"]
    assert "NUL, control" in reasons[f"{zoe}3005_evil.ipynb\\x00secret"]
    assert "NUL, control" in reasons[f"{zoe}3006_\\x1b[2Jclear.ipynb"]
    assert "\x1b" not in log and "\x00" not in log  # names are shown escaped
    assert reasons[f"{zoe}3007_link.json"] == "a link"
    assert "only .ipynb, .pt, .json files are graded" in reasons[f"{zoe}3008_notes.txt"]
    assert sorted(p.name for p in (course.root / "submitted" / "zhaozoe" / A).iterdir()) == [
        f"{A}.ipynb", "timestamp.txt"]
    assert report["unmatched"] == ["readme_from_lms.txt"]
    assert (course.root / "grading" / A / "collect.json").is_file()


def test_the_canvas_import_file_has_one_row_per_canvas_id(collected, tmp_path):
    course, report, _, _ = collected
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_assignment(A)
    canvas_csv({A: scores_table(course, A)}, tmp_path / "canvas_import.csv", roster_of(course.db_url))
    rows = pd.read_csv(tmp_path / "canvas_import.csv", dtype=str).iloc[1:]  # after Canvas's "Points Possible"
    assert not rows["ID"].duplicated().any() and rows["ID"].notna().all()
    assert dict(zip(rows["SIS Login ID"], rows["ID"])) == {
        "ada": "1005", "ben": "1001", "dev": "1006", "evildot": "1007", "joerg": "1002", "juergen": "1004",
        "sean": "1003", "zhaozoe": "1099"}  # no "..", no "okaforben", no phantom
    assert not (course.root / A).exists()  # a login of ".." would have written <course>/segmentation_hw/


# ------------------------------------------------------------------ a name change, no roster, the roster afterwards


@pytest.mark.slow  # three collects
def test_a_name_change_without_a_roster_then_the_roster_keeps_one_student_and_one_canvas_row_per_id(
        tmp_path, empty_gradebook, monkeypatch):
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    course = new_course(tmp_path / "course", empty_gradebook)
    first, second = tmp_path / "week1.zip", tmp_path / "week2.zip"
    first.write_bytes(zip_bytes([(canvas_file_name("Lovelace, Ada", 1000, 1, f"{A}.ipynb"), notebook("week 1")),
                                 (canvas_file_name("Okafor, Ben", 1001, 2, f"{A}.ipynb"), notebook("ben"))]))
    second.write_bytes(zip_bytes([(canvas_file_name("Byron, Ada", 1000, 3, f"{A}.ipynb"), notebook("week 2"))]))
    lines = []
    report = collect(course, A, first, log=lines.append)
    assert report["students"] == ["lovelaceada", "okaforben"] and "no roster in the gradebook" in report["assumption"]
    assert "ASSUMED: no roster" in "\n".join(lines) and "import the roster" in report["assumption"]
    report = collect(course, A, second, log=lines.append)  # she married: Canvas's prefix changed, her id did not
    assert report["students"] == ["lovelaceada"] and report["submissions"]["lovelaceada"]["prefixes"] == ["byronada"]
    assert sorted(roster_of(course.db_url)) == ["lovelaceada", "okaforben"]

    import_roster(course.db_url, read_roster(write_roster(tmp_path / "roster.csv", [("Byron, Ada", "1000", "ada")])),
                  log=lines.append, course_root=course.root)  # the fix the report names
    import_roster(course.db_url, [Person("ben", "Ben", "Okafor")], log=lines.append, course_root=course.root)
    assert (course.root / "submitted" / "ada" / A / f"{A}.ipynb").read_bytes() == notebook("week 2")
    report = collect(course, A, first, log=lines.append)  # ben, on the roster without an id: matched by name
    assert report["students"] == ["ada", "ben"] and report["assumption"] is None
    assert {s: sub["matched_by"] for s, sub in report["submissions"].items()} == {"ada": "canvas id", "ben": "name"}
    assert sorted(p.name for p in (course.root / "submitted").iterdir()) == ["ada", "ben"]
    assert sorted(roster_of(course.db_url)) == ["ada", "ben"]
    assert any("okaforben merged into ben" in line for line in lines)

    with Gradebook(course.db_url) as gb:
        gb.update_or_create_assignment(A)
    canvas_csv({A: scores_table(course, A)}, tmp_path / "canvas_import.csv", roster_of(course.db_url))
    rows = pd.read_csv(tmp_path / "canvas_import.csv", dtype=str).iloc[1:]
    assert sorted(rows["ID"]) == ["1000", "1001"] and not rows["ID"].duplicated().any()
    assert dict(zip(rows["SIS Login ID"], rows["ID"])) == {"ada": "1000", "ben": "1001"}


@pytest.mark.slow  # a subprocess or a whole release: the full suite's, not the fast tier's
def test_the_cli_works_from_the_environments_python_without_activating_it(tmp_path, empty_gradebook):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")  # no gradebook yet: roster makes it
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if Path(p).resolve() != Path(sys.executable).parent.resolve()) or "/usr/bin:/bin"
    assert shutil.which("alembic", path=env["PATH"]) is None  # the venv's tools are not on this PATH
    roster = write_roster(tmp_path / "roster.csv", [("Okafor, Ben", "1001", "ben")])
    proc = subprocess.run([sys.executable, "-m", "autograder", "--course", str(course), "roster", str(roster)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "1 student(s) written" in proc.stdout and "FileNotFoundError" not in proc.stderr
    assert roster_of(f"sqlite:///{course / 'gradebook.db'}")["ben"].lms_user_id == "1001"
