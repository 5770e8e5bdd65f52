"""``collect``: an LMS zip export → nbgrader's ``submitted/<student>/<assignment>/`` layout, through
``nbgrader zip_collect``, with a report of every file that could not be matched to a student.

Supported export: Canvas "Download Submissions". Files are named ``<login>[_LATE]_<user id>_<submission id>_<name>``,
and Canvas appends ``-1``, ``-2``... to the name of a resubmitted file (``segmentation_hw-1.ipynb``); that suffix
is removed; the user id goes into the gradebook (``autograder.roster``). Submission times, when the LMS provides them, come from an optional ``timestamps.csv`` at the top of
the zip (columns ``student_id,timestamp``, ISO 8601 or nbgrader's format) and become ``timestamp.txt``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from nbgrader.plugins.zipcollect import FileNameCollectorPlugin
from traitlets import List

from autograder.errors import GraderError
from autograder.course import Course, nbgrader_env
from autograder.roster import record_lms_ids

CANVAS_PATTERN = re.compile(
    r"^(?P<student_id>[A-Za-z0-9.\-]+?)_(?P<late>LATE_|late_)?(?P<user_id>\d+)_\d+_(?P<file_id>.+?)(?:-\d+)?(?P<ext>\.[A-Za-z0-9]+)$")
VALID_EXT = (".ipynb", ".pt", ".json")
MAX_UNCOMPRESSED = 4 * 1024**3


class CanvasCollector(FileNameCollectorPlugin):
    """nbgrader collector plugin for Canvas file names (resubmission suffix removed)."""

    valid_ext = List(default_value=list(VALID_EXT)).tag(config=True)

    def collect(self, submitted_file: str):
        match = CANVAS_PATTERN.match(os.path.basename(submitted_file))
        if not match or match.group("ext") not in self.valid_ext:
            return None
        return {"student_id": match.group("student_id").lower(), "file_id": match.group("file_id") + match.group("ext")}


def _check_archive(zip_path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as err:
        raise GraderError(f"{zip_path} is not a zip file ({err})") from err
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED:
        raise GraderError(f"{zip_path} unpacks to {total / 1e9:.1f} GB, over the {MAX_UNCOMPRESSED / 1e9:.0f} GB limit")
    return [i.filename for i in infos if not i.is_dir()]


def _timestamps(zip_path: Path) -> dict[str, str]:
    with zipfile.ZipFile(zip_path) as archive:
        names = [n for n in archive.namelist() if os.path.basename(n) == "timestamps.csv"]
        if not names:
            return {}
        text = archive.read(names[0]).decode("utf-8-sig")
    return {row["student_id"].strip().lower(): row["timestamp"].strip() for row in csv.DictReader(io.StringIO(text))
            if row.get("student_id") and row.get("timestamp")}


def collect(course: Course, assignment: str, zip_path: Path, log=print) -> dict:
    """Unpacks ``zip_path`` into ``submitted/`` and returns the report (also written to ``grading/<a>/collect.json``)."""
    zip_path = Path(zip_path).resolve()
    if not zip_path.is_file():
        raise GraderError(f"no such zip file: {zip_path}")
    members = _check_archive(zip_path)
    archive_dir = course.root / "downloaded" / assignment / "archive"
    if archive_dir.exists():
        shutil.rmtree(archive_dir)
    archive_dir.mkdir(parents=True)
    shutil.copy(zip_path, archive_dir / zip_path.name)
    env = nbgrader_env(course.root, course.db_url)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # the collector plugin; no student code runs here
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
                           "--ZipCollectApp.collector_plugin=autograder.collect.CanvasCollector"],
                          cwd=course.root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise GraderError(f"nbgrader zip_collect failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    matched, unmatched, late, lms_ids = {}, [], set(), {}
    for member in members:
        name = os.path.basename(member)
        if name == "timestamps.csv":
            continue
        m = CANVAS_PATTERN.match(name)
        if not m or m.group("ext") not in VALID_EXT:
            unmatched.append(member)
            continue
        student = m.group("student_id").lower()
        matched.setdefault(student, []).append(m.group("file_id") + m.group("ext"))
        lms_ids[student] = m.group("user_id")
        if m.group("late"):
            late.add(student)
    record_lms_ids(course.db_url, lms_ids)  # Canvas matches its grade import on these (autograder.roster)
    stamps = _timestamps(zip_path)
    for student, stamp in stamps.items():
        folder = course.root / "submitted" / student / assignment
        if folder.is_dir():
            (folder / "timestamp.txt").write_text(stamp)
    report = {"assignment": assignment, "zip": str(zip_path), "students": sorted(matched),
              "files": {s: sorted(set(f)) for s, f in sorted(matched.items())}, "unmatched": sorted(unmatched),
              "marked_late_by_lms": sorted(late), "timestamps": len(stamps),
              "without_notebook": sorted(s for s, f in matched.items() if f"{assignment}.ipynb" not in f)}
    out = course.results_dir(assignment) / "collect.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    log(f"collected {len(matched)} student(s) from {zip_path.name}; {len(unmatched)} unmatched file(s)")
    for member in unmatched:
        log(f"  unmatched: {member}")
    for student in report["without_notebook"]:
        log(f"  {student}: no {assignment}.ipynb in the export")
    return report
