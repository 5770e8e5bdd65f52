"""The roster (``autograder.roster``): names, emails and Canvas ids into the gradebook and back out in the Canvas
import file; a malformed roster says what is wrong, and an unusable row is skipped and listed, never the class."""

from __future__ import annotations

import csv
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from classes import CANVAS_IDS, NAMES, STUDENTS, write_roster
from autograder.errors import GraderError
from autograder.export import canvas_csv
from autograder.roster import Person, Roster, import_roster, read_roster, record_lms_ids, roster_of


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> Path:
    """One new gradebook for the module (nbgrader runs its migration tool, alembic, to make one), copied per test."""
    from nbgrader.api import Gradebook

    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
        Gradebook(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def db_url(tmp_path, empty_gradebook):
    shutil.copy(empty_gradebook, tmp_path / "gradebook.db")
    return f"sqlite:///{tmp_path / 'gradebook.db'}"


def test_canvas_gradebook_export_gives_names_emails_and_ids(tmp_path):
    people = {p.student: p for p in read_roster(write_roster(tmp_path / "roster.csv"))}
    assert sorted(people) == sorted(STUDENTS)  # the "Points Possible" row is not a student
    ada = people["ada"]
    assert (ada.first_name, ada.last_name, ada.email, ada.lms_user_id) == ("Ada", "Lovelace", "ada@uni.example",
                                                                            str(CANVAS_IDS["ada"][0]))


def test_a_people_list_with_other_column_names_and_name_orders(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("Login,E-mail,Name\nAda.L,ada@x.org,Ada Lovelace\nben,,Okafor\n")
    roster = read_roster(path)
    assert list(roster) == [Person("ada.l", "Ada", "Lovelace", "ada@x.org", None),
                            Person("ben", None, "Okafor", None, None)]
    assert roster.skipped == ()


@pytest.mark.parametrize("content, message", [
    ("Name,Email\nAda Lovelace,ada@x.org\n", "no login column: expected one of"),
    ("", "has no rows"),
])
def test_a_malformed_roster_says_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "roster.csv"
    path.write_text(content)
    with pytest.raises(GraderError, match=message):
        read_roster(path)


def test_a_missing_roster_file_says_where_it_looked(tmp_path):
    with pytest.raises(GraderError, match="no roster file at .*nothing.csv"):
        read_roster(tmp_path / "nothing.csv")


def test_import_keeps_what_a_later_roster_leaves_empty_and_collect_adds_ids(tmp_path, db_url):
    import_roster(db_url, read_roster(write_roster(tmp_path / "roster.csv", with_ids=False)), log=lambda *_: None)
    assert roster_of(db_url)["ada"].lms_user_id is None
    record_lms_ids(db_url, {"ada": "1000", "zoe": "1099"})  # what collect found in the zip's file names
    import_roster(db_url, [Person("ada", email="ada@new.example")], log=lambda *_: None)
    people = roster_of(db_url)
    assert people["ada"] == Person("ada", "Ada", "Lovelace", "ada@new.example", "1000")
    assert people["zoe"] == Person("zoe", None, None, None, "1099")  # submitted, not on the roster


def test_the_canvas_import_file_carries_names_and_the_ids_canvas_matches_on(tmp_path, db_url):
    import_roster(db_url, read_roster(write_roster(tmp_path / "roster.csv")), log=lambda *_: None)
    table = pd.DataFrame({"student": ["ada", "ben", "nobody"], "total": [40.0, 30.5, 0.0], "max": [85.0] * 3})
    canvas_csv({"segmentation_hw": table}, tmp_path / "canvas.csv", roster_of(db_url))
    rows = pd.read_csv(tmp_path / "canvas.csv", dtype=str).iloc[1:].set_index("SIS Login ID")
    first, last = NAMES["ben"]
    assert rows.loc["ben", "Student"] == f"{last}, {first}" and rows.loc["ben", "ID"] == str(CANVAS_IDS["ben"][0])
    assert rows.loc["nobody", "Student"] == "nobody" and pd.isna(rows.loc["nobody", "ID"])
    assert rows.loc["ben", "segmentation_hw"] == "30.5"


@pytest.mark.parametrize("login, id_, reason", [
    ("..", "1001", "the login '..' is the name '..'"),
    ("a/b", "1001", "a name with a path separator"),
    ("x" * 129, "1001", "over 128 characters"),
    ("ben\x1b[2J", "1001", "control or invisible formatting character"),
    (".hidden", "1001", "a hidden name"),
    ("-rf", "1001", "a name starting with '-'"),
    ("", "1001", "no login in column 'SIS Login ID'"),
    ("ben", "10O1", "the Canvas id '10O1' is not a number"),
])
def test_an_unusable_row_is_skipped_and_listed_and_the_rest_is_read(tmp_path, login, id_, reason):
    path = tmp_path / "roster.csv"
    with path.open("w", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(["Student", "ID", "SIS Login ID"])
        rows.writerow(["Lovelace, Ada", "1000", "ada"])
        rows.writerow(["Okafor, Ben", id_, login])
        rows.writerow(["Lindqvist, Cara", "1002", "cara"])
    roster = read_roster(path)
    assert [p.student for p in roster] == ["ada", "cara"]
    assert len(roster.skipped) == 1 and reason in roster.skipped[0] and roster.skipped[0].startswith("line 3 (Okafor")


def test_rows_that_give_one_canvas_id_two_logins_or_one_login_two_ids_are_all_skipped(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("Student,ID,SIS Login ID,Section\n"
                    '"Okafor, Ben",1001,ben,A\n"Okafor, Ben",1001,ben,B\n'  # two sections, the same row: one student
                    '"Raman, Dev",1003,dev,A\n"Raman, Devi",1003,devi,A\n'  # one Canvas id, two logins
                    '"Navarro, Eli",1004,eli,A\n"Navarro, Eli",1005,eli,A\n'  # one login, two Canvas ids
                    '"Lovelace, Ada",1000,ada,A\n')
    roster = read_roster(path)
    assert [(p.student, p.lms_user_id) for p in roster] == [("ben", "1001"), ("ada", "1000")]
    assert len(roster.skipped) == 4 and all("conflict with another row" in line for line in roster.skipped)


def test_import_lists_the_skipped_rows(tmp_path, db_url):
    lines = []
    import_roster(db_url, Roster((Person("ada", lms_user_id="1000"),), ("line 3: skipped",)), log=lines.append)
    assert lines == ["roster: line 3: skipped", "roster: 1 student(s) written to the gradebook"]


def test_a_roster_that_gives_a_held_canvas_id_to_another_login_needs_the_course_to_merge(tmp_path, db_url):
    record_lms_ids(db_url, {"okaforben": "1001"})  # a stand-in collect made before the roster
    with pytest.raises(GraderError, match="okaforben → ben.*import it with the course"):
        import_roster(db_url, [Person("ben", lms_user_id="1001")], log=lambda *_: None)
    folder = tmp_path / "submitted" / "okaforben" / "segmentation_hw"
    folder.mkdir(parents=True)
    (folder / "segmentation_hw.ipynb").write_text("{}")
    (tmp_path / "autograded" / "okaforben").mkdir(parents=True)
    lines = []
    import_roster(db_url, [Person("ben", lms_user_id="1001")], log=lines.append, course_root=tmp_path)
    assert sorted(roster_of(db_url)) == ["ben"] and roster_of(db_url)["ben"].lms_user_id == "1001"
    assert (tmp_path / "submitted" / "ben" / "segmentation_hw" / "segmentation_hw.ipynb").is_file()
    assert not (tmp_path / "submitted" / "okaforben").exists() and not (tmp_path / "autograded" / "okaforben").exists()
    assert "okaforben merged into ben" in lines[0] and "grade it again for ben" in lines[0]


def test_a_stand_in_named_like_another_students_login_makes_way_and_keeps_its_files(tmp_path, db_url):
    from autograder.roster import record_standins, standins

    record_lms_ids(db_url, {"zhaozoe": "1099"})  # collect named Canvas user 1099 after her prefix
    record_standins(tmp_path, {"zhaozoe": {"canvas_id": "1099", "prefix": "zhaozoe"}})
    folder = tmp_path / "submitted" / "zhaozoe" / "segmentation_hw"
    folder.mkdir(parents=True)
    (folder / "segmentation_hw.ipynb").write_text("zoe's")
    lines = []
    import_roster(db_url, [Person("zhaozoe", "Zoey", "Zhao-Lee", lms_user_id="2000")], log=lines.append,
                  course_root=tmp_path)  # the roster's zhaozoe is someone else
    people = roster_of(db_url)
    assert (people["zhaozoe"].lms_user_id, people["zhaozoe-1099"].lms_user_id) == ("2000", "1099")
    assert (tmp_path / "submitted" / "zhaozoe-1099" / "segmentation_hw" / "segmentation_hw.ipynb").read_text() == "zoe's"
    assert not (tmp_path / "submitted" / "zhaozoe").exists()
    assert standins(tmp_path) == {"zhaozoe-1099": {"canvas_id": "1099", "prefix": "zhaozoe"}}
    assert any("is now zhaozoe-1099" in line for line in lines)
