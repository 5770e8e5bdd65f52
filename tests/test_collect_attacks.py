"""``collect`` attacked: what a student who has read the grader's source can put in a Canvas export (their sortable
name, their uploaded files' names and contents, archives they craft), and what a careless TA does (collecting an
older export after a newer one, twice). Each test names the attack and asserts the safe outcome: no file reaches a
classmate's folder or a phantom student, no timestamp reaches the wrong student, one student's upload never stops
the class, and what the grader unpacks and lists stays within the student's allowance.

Canvas builds the prefix from the sortable name, which a student can edit when the account lets users change their
name; it removes ``_<digits>_`` from it, but a name that ends in ``_<digits>`` or holds ``__<digits>__`` keeps
digits between underscores (``ContentZipper#sanitize_user_name``), so ``okaforben_1001_1002_6000_x.zip`` may be
Canvas user 1001's ``6000_x.zip`` or user 1002's ``x.zip``. Helpers come from ``tests/test_collect.py``."""

from __future__ import annotations

import io
import os
import struct
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.collect import collect
from autograder.roster import import_roster, read_roster, roster_of
from autograder.safe_unzip import Limits
from test_collect import A, canvas_file_name, empty_gradebook, new_course, notebook, write_roster, zip_bytes

__all__ = ["empty_gradebook"]  # the gradebook fixture, shared with test_collect.py

CAP = 4 * 1024**2  # each student's allowance in these tests
LIMITS = Limits(export_bytes=3 * CAP, student_bytes=CAP, archive_listing_bytes=46 * 1000)


def _set_utf8_flag(data: bytes) -> bytes:
    out = bytearray(data)
    for signature, at in ((b"PK\x03\x04", 7), (b"PK\x01\x02", 9)):  # the flags' high byte
        i = out.find(signature)
        out[i + at] |= 0x08  # bit 11: the name is UTF-8
    return bytes(out)


def _damaged(method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr(f"{A}_results.json", b'{"metrics": {}}' * 400)
    data = bytearray(buffer.getvalue())
    name_length, extra_length = struct.unpack("<HH", data[26:30])
    start = 30 + name_length + extra_length
    for i in range(start + 4, start + 24):  # past LZMA's 4-byte header, into its properties
        data[i] ^= 0x5A
    return bytes(data)


def _empty_entries_zip(count: int) -> bytes:
    """A zip of ``count`` directory entries with empty names and no data: 46 bytes each (1 million in 46 MB took
    12 s and 420 MB of memory to open)."""
    entry = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    directory = entry * count
    return directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                                   len(directory), 0, 0)


def _bad_crc(data: bytes) -> bytes:
    out = bytearray(data)
    for signature, at in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        i = out.find(signature)
        while i >= 0:
            out[i + at] ^= 0xFF
            i = out.find(signature, i + 4)
    return bytes(out)


UNREADABLE = {  # login → an archive nobody can read, and why
    "una": _set_utf8_flag(zip_bytes([(f"{A}_results.jXson", b"{}")]).replace(b".jXson", b".j\xffson")),  # flag lies
    "dee": _damaged(zipfile.ZIP_DEFLATED), "lou": _damaged(zipfile.ZIP_LZMA), "bea": _damaged(zipfile.ZIP_BZIP2),
}
ROSTER = [  # (sortable name on the roster, Canvas id, login); the export may carry another sortable name
    ("Okafor, Ben", "1001", "ben"),  # the classmate every attack aims at
    ("Mallory, Eve", "1002", "eve"), ("Moriarty, Jim", "1003", "jim"), ("Phantom, Pat", "1004", "pat"),
    ("Namer, Ned", "1005", "ned"), ("Mallory_2, Eve 3rd", "1006", "eve3"), ("Ben", "1000", "eve0"),
    ("Numbers, Nia", "1015", "1000"), ("Utf, Una", "1007", "una"), ("Deflate, Dee", "1008", "dee"),
    ("Lzma, Lou", "1009", "lou"), ("Bzip, Bea", "1010", "bea"), ("Many, Max", "1011", "max"),
    ("Project, Pia", "1012", "pia"), ("Crc, Cy", "1013", "cy"), ("Big, Bo", "1014", "bo"),
    ("Stamp, Sal", "1016", "sal"), ("Twin, Tia", "1017", "tia"), ("Escape, Esc", "1018", "esc"),
    ("Windows, Win", "1019", "win"),
]
ESCAPES = [f"\x1b]0;pwned\x07{A}.json", f"{A}\u202enosj.pt", "\x1b[2J.json"]


def upload(login: str, file_id: int, uploaded: str, sortable: str | None = None, late: bool = False) -> str:
    """The export's name of a file ``login`` uploaded, under the sortable name Canvas has for them now."""
    name, user_id, _ = next(row for row in ROSTER if row[2] == login)
    return canvas_file_name(sortable or name, int(user_id), file_id, uploaded, late)


def attacked_export(path: Path) -> None:
    planted = zip_bytes([(f"{A}_checkpoint.pt", b"weights planted in ben's folder")])
    entries = [
        (upload("ben", 5000, f"{A}.ipynb"), notebook("ben's own")),
        (upload("eve", 6000, "planted.zip", "Okafor, Ben_1001"), planted),  # okaforben_1001_1002_6000_planted.zip
        (upload("eve", 6001, "aaa.pt", "Okafor, Ben_1001"), bytes(CAP - 100)),  # would spend ben's allowance first
        (upload("jim", 6002, "planted.zip", "Okafor, Ben__1001__5000"), planted),  # okaforben_1001_5000_1003_...
        (upload("pat", 6003, f"{A}.ipynb", "Okafor, Ben_99999"), notebook("a student nobody enrolled")),
        (upload("ned", 6004, f"1001_5000_{A}.ipynb"), notebook("ned, named like ben's upload")),
        (upload("eve3", 6005, f"{A}.ipynb"), notebook("eve3")),
        (upload("eve0", 6006, f"{A}.ipynb", "Ben", late=True), notebook("eve0, renamed 'Ben'")),
        (upload("1000", 6007, f"{A}.ipynb"), notebook("nia, login 1000")),
        *[(upload(login, 6100 + i, "work.zip"), archive) for i, (login, archive) in enumerate(UNREADABLE.items())],
        *[(upload(login, 6200 + i, f"{A}.ipynb"), notebook(login)) for i, login in enumerate(UNREADABLE)],
        (upload("max", 6300, "many.zip"), _empty_entries_zip(1001)),
        (upload("max", 6301, f"{A}.ipynb"), notebook("max")),
        (upload("pia", 6400, "project.zip"), zip_bytes([(f"frames/{i:05}.png", b"") for i in range(500)]
                                                       + [(f"project/{A}.ipynb", notebook("pia"))])),
        (upload("cy", 6500, "crc.zip"), _bad_crc(zip_bytes([(f"m{i:02}.json", bytes(CAP // 3)) for i in range(12)]))),
        (upload("bo", 6600, f"{A}_checkpoint.pt"), bytes(4 * CAP)),  # past the export's limit on its own
        (upload("bo", 6601, f"{A}.ipynb"), notebook("bo")),
        (upload("sal", 6700, "timestamp.txt"), b"2020-01-01 00:00:00"),
        (upload("sal", 6701, "work.zip"), zip_bytes([("timestamp.txt", b"2020-01-01 00:00:00"),
                                                     (f"{A}.ipynb", notebook("sal"))])),
        (upload("tia", 6800, "work.zip", "Okafor, B\u0435n"), zip_bytes([  # a Cyrillic e in her name
            (f"a/{A}.ipynb", notebook("tia, first")), (f"b/{A}.ipynb", notebook("tia, second"))])),
        (upload("esc", 6900, "work.zip"), zip_bytes([(name, b"{}") for name in ESCAPES])),
        (upload("win", 7000, "hw.zip"), zip_bytes([  # Windows PowerShell's Compress-Archive: \\ between folders
            ("hw\\", b""), (f"hw\\{A}.ipynb", notebook("win")), ("..\\..\\escape.json", b"{}"),
            ("C:\\Users\\win\\escape.json", b"{}"), ("\\escape.json", b"{}")])),
        (canvas_file_name("\uff2f\uff4b\uff41\uff46\uff4f\uff52, Ben", 1099, 3000, f"{A}.ipynb"),  # fullwidth
         notebook("zoe, not on the roster")),
        ("timestamps.csv", b"student_id,timestamp\neve0,2026-12-09 20:00:00 UTC\nben,2026-12-01 20:00:00 UTC\n"
                           b"1000,2026-12-02 10:00:00 UTC\n"),
    ]
    path.write_bytes(zip_bytes(entries))


@pytest.fixture(scope="module")
def attacked(tmp_path_factory, empty_gradebook):
    root = tmp_path_factory.mktemp("attacked")
    course = new_course(root / "course", empty_gradebook)
    attacked_export(root / "canvas.zip")
    lines = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
        import_roster(course.db_url, read_roster(write_roster(root / "roster.csv", ROSTER)), log=lines.append,
                      course_root=course.root)
        report = collect(course, A, root / "canvas.zip", log=lines.append, limits=LIMITS)
    return course, report, "\n".join(lines)


def folder(course, student: str) -> dict[str, bytes]:
    """The files collected for ``student`` (but nbgrader's ``timestamp.txt``, made from ``timestamps.csv``)."""
    path = course.root / "submitted" / student / A
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name != "timestamp.txt"} \
        if path.is_dir() else {}


def refused(report, student: str | None = None) -> dict[str, str]:
    ids = {row[2]: row[1] for row in ROSTER}
    return {row["entry"]: row["reason"] for row in report["refused"]
            if student is None or row.get("canvas_id") == ids[student]}


def refused_from(report, entry: str) -> dict[str, str]:
    return {e: r for e, r in refused(report).items() if e == entry or e.startswith(f"{entry} → ")}


def test_the_attacked_class_is_collected(attacked):
    course, report, _ = attacked
    zoe = report["not_on_roster"][0]["student"]  # the fullwidth prefix, not on the roster
    # each attacker's own notebook, nothing of ben's
    assert report["students"] == sorted(["1000", "bea", "ben", "bo", "dee", "eve0", "eve3", "lou", "max", "pia",
                                         "sal", "tia", "una", "win", zoe])
    assert report["roster_without_submission"] == ["cy", "esc", "eve", "jim", "ned", "pat"]  # they aimed elsewhere


# ------------------------------------------------------------------ the prefix: a sortable name that ends in digits


def test_a_sortable_name_ending_in_a_classmates_canvas_id_reaches_nothing_of_theirs(attacked):
    course, report, log = attacked
    assert folder(course, "ben") == {f"{A}.ipynb": notebook("ben's own")}
    assert [f["file_id"] for f in report["submissions"]["ben"]["files"]] == [5000]
    entries = {upload("eve", 6000, "planted.zip", "Okafor, Ben_1001"): "1002",
               upload("eve", 6001, "aaa.pt", "Okafor, Ben_1001"): "1002",
               upload("jim", 6002, "planted.zip", "Okafor, Ben__1001__5000"): "1003"}
    assert list(entries)[0] == "okaforben_1001_1002_6000_planted.zip"
    assert list(entries)[2] == "okaforben_1001_5000_1003_6002_planted.zip"
    reasons = refused(report)
    for entry, uid in entries.items():
        assert "Canvas user 1001" in reasons[entry] and f"Canvas user {uid}'s 'planted.zip'" in reasons[entry] \
            or entry.endswith("aaa.pt")
    assert all(reasons[entry].startswith("ambiguous") for entry in entries)
    assert "ambiguous: the name reads as Canvas user 1001's" in log


def test_a_sortable_name_ending_in_an_unknown_id_makes_no_phantom_student(attacked):
    course, report, _ = attacked
    assert "99999" not in {p.lms_user_id for p in roster_of(course.db_url).values()}
    assert [row["canvas_id"] for row in report["not_on_roster"]] == ["1099"]
    assert sorted(p.name for p in (course.root / "submitted").iterdir()) == sorted(report["students"])
    assert "Canvas user 99999" in refused_from(report, upload("pat", 6003, f"{A}.ipynb", "Okafor, Ben_99999"))[
        upload("pat", 6003, f"{A}.ipynb", "Okafor, Ben_99999")]


def test_an_uploaded_file_named_like_a_classmates_canvas_name_reaches_nothing_of_theirs(attacked):
    """The other direction: Ned names his upload ``1001_5000_segmentation_hw.ipynb``."""
    course, report, _ = attacked
    entry = upload("ned", 6004, f"1001_5000_{A}.ipynb")
    assert "Canvas user 1001" in refused(report)[entry] and folder(course, "ned") == {}


def test_a_name_with_digits_that_has_one_reading_is_collected(attacked):
    course, report, _ = attacked
    assert folder(course, "eve3") == {f"{A}.ipynb": notebook("eve3")}
    assert report["submissions"]["eve3"]["matched_by"] == "canvas id"


def test_homoglyph_and_fullwidth_prefixes_follow_the_canvas_id(attacked):
    course, report, _ = attacked
    assert folder(course, "tia") == {f"{A}.ipynb": notebook("tia, first")}  # "okaforbеn", Cyrillic е: her id
    zoe = report["not_on_roster"][0]["student"]
    assert zoe not in ("ben", "okaforben") and folder(course, zoe) == {f"{A}.ipynb": notebook("zoe, not on the roster")}


@pytest.mark.parametrize("name, read", [
    ("okaforben_1001_57321_segmentation_hw.ipynb", [("1001", "segmentation_hw.ipynb")]),
    ("okaforben_late_1001_1002_6000_x.zip", [("1001", "6000_x.zip"), ("1002", "x.zip")]),  # late: 1001's reading
    ("okaforben_1001_5000_1003_6002_x.zip", [("1001", "1003_6002_x.zip"), ("5000", "6002_x.zip"), ("1003", "x.zip")]),
    ("mallory_2eve3rd_1006_6005_hw-1.ipynb", [("1006", "hw-1.ipynb")]),
])
def test_every_reading_of_a_canvas_name(name, read):
    from autograder import canvas_names

    found = canvas_names.readings(name)
    assert [(r.user_id, r.uploaded) for r in found] == read and canvas_names.parse(name) == found[0]
    assert found[0].late == ("late" in name) and found[-1].prefix.startswith("okaforben" if "okafor" in name else "m")


# ------------------------------------------------------------------------------------ timestamps.csv's student keys


def test_a_timestamp_row_for_a_login_never_goes_to_a_classmate_whose_prefix_is_that_login(attacked):
    """Eve0 renamed herself "Ben" (prefix ``ben``) and has the lower Canvas id; the TA's row ``ben`` is Ben's."""
    course, report, _ = attacked
    times = {s: report["submissions"][s]["submitted_at"] for s in ("ben", "eve0", "1000")}
    assert times == {"ben": "2026-12-01T20:00:00+00:00", "eve0": "2026-12-09T20:00:00+00:00", "1000": None}
    assert (course.root / "submitted" / "ben" / A / "timestamp.txt").read_text() == "2026-12-01 20:00:00"
    assert any("'1000' names 1000, eve0" in note for note in report["notes"])  # a login, and another's Canvas id


# ---------------------------------------------------------------------- an archive nobody can read stops nobody else


@pytest.mark.parametrize("login", list(UNREADABLE))
def test_an_unreadable_archive_is_refused_and_the_class_collected(attacked, login):
    course, report, _ = attacked
    assert folder(course, login) == {f"{A}.ipynb": notebook(login)}
    reasons = refused(report, login)
    assert len(reasons) == 1 and any(w in next(iter(reasons.values())) for w in ("unreadable", "not a readable zip"))


# --------------------------------------------------------------------- what one student's upload may cost the grader


def test_an_archive_listing_more_entries_than_allowed_is_refused_unread(attacked):
    course, report, _ = attacked
    assert folder(course, "max") == {f"{A}.ipynb": notebook("max")}
    assert "46,046-byte directory" in refused(report, "max")[upload("max", 6300, "many.zip")]


def test_an_archive_of_many_refused_entries_is_listed_in_a_few_lines(attacked):
    course, report, log = attacked
    assert folder(course, "pia") == {f"{A}.ipynb": notebook("pia")}
    rows = refused(report, "pia")
    assert len(rows) == 21 and "480 more entries" in rows[upload("pia", 6400, "project.zip")]
    assert len(log.splitlines()) < 150


@pytest.mark.parametrize("comment, entries", [(b"", 3), (b"c" * 65535, 3), (b"", 70_000)])  # 70,000: ZIP64's record
def test_the_directory_size_is_read_as_zipfile_reads_it(comment, entries):
    from autograder.safe_unzip import listing_bytes

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(entries):
            archive.writestr(f"{i}.json", b"")
        archive.comment = comment
    infos = zipfile.ZipFile(buffer).infolist()
    encoded = lambda i: i.orig_filename.encode("utf-8" if i.flag_bits & 0x800 else "cp437")
    assert listing_bytes(buffer) == sum(46 + len(encoded(i)) + len(i.extra) + len(i.comment) for i in infos)
    assert (b"PK\x06\x06" in buffer.getvalue()) == (entries > 0xFFFF)
    assert listing_bytes(io.BytesIO(b"not a zip")) is None


def test_members_that_fail_their_checksum_still_count_against_the_allowance(attacked):
    """Each member is unpacked to its end before its CRC fails: uncounted, 600 KB made the grader write 600 MB."""
    _, report, _ = attacked
    reasons = list(refused(report, "cy").values())
    assert sum("Bad CRC-32" in r for r in reasons) == 3  # a third of the allowance each; then it is spent
    assert len(reasons) == 12 and all("past what is left" in r for r in reasons if "Bad CRC-32" not in r)


def test_one_students_upload_over_the_exports_limit_stops_only_that_upload(attacked):
    course, report, _ = attacked
    assert folder(course, "bo") == {f"{A}.ipynb": notebook("bo")}
    assert "past what is left" in refused(report, "bo")[upload("bo", 6600, f"{A}_checkpoint.pt")]


# ------------------------------------------------------------------------------------------------ careless TA


@pytest.mark.slow  # three collects
def test_collecting_twice_is_the_same_and_an_older_export_after_a_newer_one_keeps_the_newer_submission(
        tmp_path, empty_gradebook, monkeypatch):
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    course = new_course(tmp_path / "course", empty_gradebook)
    import_roster(course.db_url, read_roster(write_roster(tmp_path / "roster.csv", ROSTER[:2])), log=lambda *_: None,
                  course_root=course.root)
    ben = lambda file_id, uploaded: upload("ben", file_id, uploaded)
    eve = (upload("eve", 6000, f"{A}.ipynb", "Okafor, Ben"), notebook("eve, renamed 'Okafor, Ben'"))
    zoe = (canvas_file_name("Zhao, Zoe", 1099, 3000, f"{A}.ipynb"), notebook("zoe, not on the roster"))
    exports = {"older": [(ben(5000, f"{A}.ipynb"), notebook("ben")), (ben(5001, f"{A}_checkpoint.pt"), b"weights"),
                         eve, zoe],
               "newer": [(ben(5000, f"{A}.ipynb"), notebook("ben")),
                         (ben(7000, f"{A}-1.ipynb"), notebook("ben, again")), eve, zoe]}
    reports, logs = [], []
    for name in ("newer", "newer", "older"):
        (tmp_path / f"{name}.zip").write_bytes(zip_bytes(exports[name]))
        reports.append(collect(course, A, tmp_path / f"{name}.zip", log=logs.append))
        if len(reports) == 1:
            tree = {s: folder(course, s) for s in reports[0]["students"]}
            assert tree == {"ben": {f"{A}.ipynb": notebook("ben, again")}, "eve": {f"{A}.ipynb": eve[1]},
                            "zhaozoe": {f"{A}.ipynb": zoe[1]}}
        assert {s: folder(course, s) for s in tree} == tree
    first, twice, older = reports
    assert (twice["students"], twice["submissions"], twice["kept_newer"]) == (first["students"],
                                                                             first["submissions"], [])
    assert sorted(p.lms_user_id for p in roster_of(course.db_url).values()) == ["1001", "1002", "1099"]
    assert [(row["student"], row["collected"], row["export"]) for row in older["kept_newer"]] == [
        ("ben", 7000, 5001)]
    assert any("ben: kept the submission collected before" in line for line in logs)
    assert older["submissions"]["ben"] == first["submissions"]["ben"]  # a later collect still knows it


# ------------------------------------------------------------------------------------------------ careless roster


def test_a_roster_row_giving_a_classmates_canvas_id_to_another_named_login_moves_nothing(
        tmp_path, empty_gradebook, monkeypatch):
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    course = new_course(tmp_path / "course", empty_gradebook)
    correct = read_roster(write_roster(tmp_path / "roster.csv", ROSTER[:2]))  # ben 1001, eve 1002
    import_roster(course.db_url, correct, log=lambda *_: None, course_root=course.root)
    bens = course.root / "submitted" / "ben" / A
    bens.mkdir(parents=True)
    (bens / f"{A}.ipynb").write_bytes(notebook("ben's own"))
    typo = read_roster(write_roster(tmp_path / "typo.csv", [("Mallory, Eve", "1001", "eve")]))  # Ben's id
    lines = []
    import_roster(course.db_url, typo, log=lines.append, course_root=course.root)
    import_roster(course.db_url, correct, log=lines.append, course_root=course.root)  # the TA corrects it
    assert folder(course, "ben") == {f"{A}.ipynb": notebook("ben's own")}
    assert folder(course, "eve") == {}
    assert {s: p.lms_user_id for s, p in roster_of(course.db_url).items()} == {"ben": "1001", "eve": "1002"}
    said = "\n".join(lines)
    assert "Canvas id 1001 is given to eve (Mallory, Eve), but the gradebook's ben (Okafor, Ben) holds it" in said
    assert "nothing moved" in said and "--merge ben" in said


def test_a_confirmed_login_change_with_a_new_name_merges_the_holder(tmp_path, empty_gradebook, monkeypatch):
    """The TA's ``--merge ben``: Ben's login really became ``benedicta`` with a new name; his files follow."""
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    course = new_course(tmp_path / "course", empty_gradebook)
    import_roster(course.db_url, read_roster(write_roster(tmp_path / "roster.csv", ROSTER[:1])), log=lambda *_: None,
                  course_root=course.root)
    bens = course.root / "submitted" / "ben" / A
    bens.mkdir(parents=True)
    (bens / f"{A}.ipynb").write_bytes(notebook("ben's own"))
    renamed = read_roster(write_roster(tmp_path / "new.csv", [("Okafor, Benedicta", "1001", "benedicta")]))
    import_roster(course.db_url, renamed, log=lambda *_: None, course_root=course.root, confirmed=frozenset({"ben"}))
    assert folder(course, "benedicta") == {f"{A}.ipynb": notebook("ben's own")}
    assert {s: p.lms_user_id for s, p in roster_of(course.db_url).items()} == {"benedicta": "1001"}


# ------------------------------------------------------------------------ defences that hold (regression tests)


def test_a_students_files_never_carry_nbgraders_timestamp_file(attacked):
    """``timestamp.txt`` in the submission folder is the submission time nbgrader grades lateness on."""
    course, _, _ = attacked
    assert folder(course, "sal") == {f"{A}.ipynb": notebook("sal")}


def test_two_members_of_one_name_in_different_folders_keep_the_first(attacked):
    _, report, _ = attacked
    entry = upload("tia", 6800, "work.zip", "Okafor, B\u0435n")
    assert "a second file named" in refused(report, "tia")[f"{entry} → b/{A}.ipynb"]


def test_a_windows_zip_with_backslashes_between_folders_is_unpacked_and_its_escapes_are_not(attacked):
    course, report, _ = attacked
    assert folder(course, "win") == {f"{A}.ipynb": notebook("win")}
    reasons = refused(report, "win")
    assert len(reasons) == 3 and all("a path that leaves its folder" in r for r in reasons.values())
    assert not list(course.root.parent.rglob("escape.json"))


def test_control_and_bidi_characters_in_an_archives_names_reach_the_log_escaped(attacked):
    _, report, log = attacked
    assert "\x1b" not in log and "\u202e" not in log and "\x07" not in log
    assert "\\x1b]0;pwned" in log and len(refused(report, "esc")) == 3
