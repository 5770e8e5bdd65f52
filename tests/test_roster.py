"""The roster (``autograder.roster``): names, emails and LMS ids from Canvas into the gradebook and back out in the
Canvas import file; every malformed roster says what is wrong."""

from __future__ import annotations

import os
import sys

import pandas as pd
import pytest

from autograder.demo import CANVAS_IDS, NAMES, STUDENTS, write_roster
from autograder.errors import GraderError
from autograder.export import canvas_csv
from autograder.roster import Person, import_roster, read_roster, record_lms_ids, roster_of


@pytest.fixture
def db_url(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")  # alembic
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
    people = read_roster(path)
    assert people == [Person("ada.l", "Ada", "Lovelace", "ada@x.org", None), Person("ben", None, "Okafor", None, None)]


@pytest.mark.parametrize("content, message", [
    ("Name,Email\nAda Lovelace,ada@x.org\n", "no login column: expected one of"),
    ("SIS Login ID,Student\nada,\"Lovelace, Ada\"\n,\"Okafor, Ben\"\n", "line 3: no login"),
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
