"""``collect``: a Canvas "Download Submissions" zip → nbgrader's ``submitted/<student>/<assignment>/``, through
``nbgrader zip_collect`` and two plugins of ours, with a report of whom each file went to and why, and of every
file that was not collected.

1. ``autograder.canvas_export.plan`` reads the zip's directory: names validated and parsed, each Canvas user id
   matched to a student (by the id the roster gave, else by the roster's name, else under a stand-in; never a
   second student for a known id), of the uploads of one file name the newest kept.
2. ``nbgrader zip_collect`` runs with ``CanvasExtractor``, which unpacks exactly the planned entries, as streams,
   within each student's allowance (``autograder.safe_unzip``), into ``downloaded/<a>/extracted/<canvas id>/``;
   a zip a student uploaded is unpacked there as well, into that student's folder only; and ``CanvasCollector``,
   which gives nbgrader the student and file of each ``<canvas id>/<file>``. nbgrader's own extractor is not used:
   it applies the archive's permission bits, has no size limit, and unpacks archives nested in the export where
   their files are then matched by name, so one student's upload could add files to another's folder.
3. The report is written to ``grading/<a>/collect.json``: per student, the Canvas id, how they were matched,
   Canvas's late marker and the submission time when known, and per file its entry, upload id, copy number,
   size and sha256; students not on the roster, roster students without a submission, superseded uploads,
   refused and unmatched entries. A student whose submission collected before is newer than this export's (its
   newest Canvas file id is larger: an export downloaded earlier, collected later) keeps it (``kept_newer``).

Accepted: ``.ipynb``, ``.pt`` and ``.json`` files (what the assignments hand in) and ``.zip`` archives of them.
Submission times, which Canvas's export does not carry, may come from an optional ``timestamps.csv`` at the top of
the zip (columns ``student_id,timestamp``: the login, the Canvas id or the file-name prefix; ISO 8601 or nbgrader's
format); they become nbgrader's ``timestamp.txt``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from nbgrader.plugins.zipcollect import ExtractorPlugin, FileNameCollectorPlugin
from traitlets import Unicode

from autograder.canvas_export import ARCHIVE_EXT, VALID_EXT, has_ext, plan
from autograder.course import Course, nbgrader_env
from autograder.errors import GraderError
from autograder.roster import merge_student, record_lms_ids, record_standins, roster_of, standins, student_id_problem
from autograder.safe_unzip import (FILE_MODE, FOLDER_MODE, Budget, Limits, Refused, listing_bytes, make_folder,
                                   member_name, name_problem, shown, write_member)

LISTED_PER_ARCHIVE = 20  # refused entries of one uploaded archive listed one by one; the rest in one line


def unpack_planned(zip_path: Path, extracted: Path, the_plan: dict) -> dict:
    """Writes the planned entries of ``zip_path`` into ``extracted/<canvas id>/<file>`` (``CanvasExtractor``'s
    work); returns the manifest: the files written and the entries refused while reading them."""
    limits = Limits(**the_plan["limits"])
    files, refused = [], []
    by_user = defaultdict(list)
    for entry in the_plan["entries"]:
        by_user[entry["canvas_id"]].append(entry)
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
        for uid, entries in by_user.items():
            folder = extracted / uid  # digits only: canvas_names.parse
            make_folder(folder)
            budget = Budget(limits.student_bytes, limits.student_files)
            for entry in entries:
                info = infos[entry["index"]]
                refuse = lambda reason, member=None: refused.append(
                    {"entry": shown(entry["entry"]) + (f" → {shown(member)}" if member else ""), "canvas_id": uid,
                     "reason": reason})
                if member_name(info) != entry["entry"]:
                    refuse("the zip changed since it was planned")
                    continue
                record = {"canvas_id": uid, "entry": shown(entry["entry"]), "late": entry["late"],
                          "file_id": entry["file_id"], "copy": entry["copy"], "from_archive": None, "member": None}
                if not entry["archive"]:
                    try:
                        size, digest = write_member(archive, info, folder / entry["file"], budget)
                    except Refused as err:
                        refuse(str(err))
                        continue
                    files.append({**record, "file": entry["file"], "bytes": size, "sha256": digest})
                    continue
                for member, outcome in _unpack_nested(archive, info, folder, budget, limits):
                    if isinstance(outcome, str):
                        refuse(outcome, member)
                    else:
                        files.append({**record, **outcome, "from_archive": entry["file"], "member": shown(member)})
    return {"files": files, "refused": refused}


def _unpack_nested(archive: zipfile.ZipFile, info: zipfile.ZipInfo, folder: Path, budget: Budget, limits: Limits):
    """A zip the student uploaded, unpacked flat into their own ``folder`` within their ``budget``. Yields
    (member, {"file", "bytes", "sha256"}) for each file written and (member, reason) for each refused."""
    if info.file_size > limits.nested_archive_bytes:
        yield None, f"an archive of {info.file_size:,} bytes, over the {limits.nested_archive_bytes:,} opened"
        return
    with tempfile.TemporaryFile(dir=folder.parent.parent) as spool:
        try:
            with archive.open(info) as stream:
                shutil.copyfileobj(stream, spool, 1 << 20)
            listing = listing_bytes(spool)
            if listing is not None and listing > limits.archive_listing_bytes:
                yield None, (f"an archive with a {listing:,}-byte directory, over the {limits.archive_listing_bytes:,} "
                             f"read (tens of thousands of entries): not unpacked; ask the student to upload the "
                             f"files handed in, one by one")
                return
            nested = zipfile.ZipFile(spool)
        except Exception as err:  # BadZipFile, UnicodeDecodeError of a name flagged UTF-8, zlib.error...
            yield None, (f"not a readable zip archive ({type(err).__name__}: {err}): ask the student to upload the "
                         f"files one by one")
            return
        with nested:
            listed, unlisted, last = 0, 0, None
            for name, outcome in _nested_members(nested, folder, budget):
                if isinstance(outcome, str):
                    if listed == LISTED_PER_ARCHIVE:
                        unlisted, last = unlisted + 1, (name, outcome)
                        continue
                    listed += 1
                yield name, outcome
            if unlisted:
                yield None, (f"{unlisted:,} more entries not unpacked, not listed one by one (the last, "
                             f"{shown(last[0])}: {last[1]})")


def _nested_members(nested: zipfile.ZipFile, folder: Path, budget: Budget):
    """Each member of an uploaded archive written flat into ``folder``, or refused: (member, outcome). ``\\``
    separates folders as ``/`` does (Windows PowerShell's ``Compress-Archive`` writes it; Info-ZIP and libarchive
    read it so)."""
    for member in nested.infolist():
        name = member_name(member)
        if member.is_dir() or name.endswith("\\"):
            continue
        parts = re.split(r"[/\\]", name)
        base = parts[-1]
        if name[:1] in ("/", "\\") or re.match("[A-Za-z]:", name) or any(p in ("", ".", "..") for p in parts):
            yield name, "a path that leaves its folder (absolute, a drive or '..'): not unpacked"
        elif has_ext(ARCHIVE_EXT, base):
            yield name, "an archive inside an uploaded archive: not unpacked"
        elif name_problem(base) or not any(has_ext(e, base) for e in VALID_EXT):
            yield name, name_problem(base) or f"not collected: only {', '.join(VALID_EXT)} files are graded"
        else:
            try:
                size, digest = write_member(nested, member, folder / base, budget)
            except Refused as err:
                yield name, str(err)
                continue
            yield name, {"file": base, "bytes": size, "sha256": digest}


def _plan_trait():
    return Unicode("", help="the JSON plan `python -m autograder collect` wrote").tag(config=True)


@lru_cache(maxsize=4)
def _read_plan(path: str) -> dict:
    return json.loads(Path(path).read_text())


class CanvasExtractor(ExtractorPlugin):
    """nbgrader extractor plugin: unpacks exactly what ``plan`` accepted (``unpack_planned``), and writes the
    manifest of what it wrote and refused next to the plan."""

    plan_file = _plan_trait()

    def extract(self, archive_path: str, extracted_path: str) -> None:
        the_plan = _read_plan(self.plan_file)
        manifest = unpack_planned(Path(archive_path) / the_plan["zip"], Path(extracted_path), the_plan)
        Path(the_plan["manifest"]).write_text(json.dumps(manifest))


class CanvasCollector(FileNameCollectorPlugin):
    """nbgrader collector plugin: ``extracted/<canvas id>/<file>`` → the student the plan matched, the file, and
    the submission time when ``timestamps.csv`` gave one. Anything else is skipped."""

    plan_file = _plan_trait()

    def collect(self, submitted_file: str):
        the_plan, path = _read_plan(self.plan_file), Path(submitted_file)
        student = the_plan["students"].get(path.parent.name)
        if (student is None or path.parent.parent.resolve() != Path(the_plan["extracted"]) or name_problem(path.name)
                or student_id_problem(student)):
            return None
        info = {"student_id": student, "file_id": path.name}
        if student in the_plan["timestamps"]:
            info["timestamp"] = the_plan["timestamps"][student]
        return info


def collect(course: Course, assignment: str, zip_path: Path, log=print, limits: Limits = Limits()) -> dict:
    """Unpacks ``zip_path`` into ``submitted/`` and returns the report (also written to
    ``grading/<assignment>/collect.json``; see the module's docstring)."""
    zip_path = Path(zip_path).resolve()
    if not zip_path.is_file():
        raise GraderError(f"no such zip file: {zip_path}")
    problem = name_problem(assignment)
    if problem:
        raise GraderError(f"the assignment name {shown(assignment)!r} is {problem}")
    the_plan = plan(course, zip_path, limits)
    for uid, standin in the_plan["replaces"].items():  # the roster now names a user collected under a stand-in
        merge_student(course.root, course.db_url, standin, the_plan["students"][uid], log)
        record_lms_ids(course.db_url, {the_plan["students"][uid]: uid})
    kept = _keep_newer(course, assignment, the_plan)
    downloaded = course.root / "downloaded" / assignment
    archive_dir = downloaded / "archive"
    shutil.rmtree(archive_dir, ignore_errors=True)
    archive_dir.mkdir(parents=True)
    shutil.copy(zip_path, archive_dir / zip_path.name)
    the_plan.update(extracted=str((downloaded / "extracted").resolve()), manifest=str(downloaded / "manifest.json"))
    plan_file = downloaded / "plan.json"
    plan_file.write_text(json.dumps(the_plan, ensure_ascii=False))
    Path(the_plan["manifest"]).unlink(missing_ok=True)
    env = nbgrader_env(course.root, course.db_url)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # the plugins; no student code runs here
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
                           "--ZipCollectApp.extractor_plugin=autograder.collect.CanvasExtractor",
                           "--ZipCollectApp.collector_plugin=autograder.collect.CanvasCollector",
                           f"--CanvasExtractor.plan_file={plan_file}", f"--CanvasCollector.plan_file={plan_file}"],
                          cwd=course.root, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not Path(the_plan["manifest"]).is_file():
        raise GraderError(f"nbgrader zip_collect failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    manifest = json.loads(Path(the_plan["manifest"]).read_text())
    report = _report(course, assignment, zip_path, the_plan, manifest, kept)
    _settle(course, assignment, the_plan, report)
    out = course.results_dir(assignment) / "collect.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    _log_report(report, log)
    return report


def _keep_newer(course: Course, assignment: str, the_plan: dict) -> list[dict]:
    """Takes out of ``the_plan`` the entries of each student whose submission collected before is newer than this
    export's (an export downloaded earlier, collected after a later one): Canvas's file ids grow with every upload,
    so the newest file id of each says which is newer. Returns the rows of the report's ``kept_newer``, each with
    the submission record collected before (``collect.json``), which the report carries on."""
    previous_report = course.results_dir(assignment) / "collect.json"
    if not previous_report.is_file():
        return []
    previous = {sub["canvas_id"]: sub for sub in json.loads(previous_report.read_text())["submissions"].values()
                if sub.get("files") and all("file_id" in f for f in sub["files"])}
    newest = defaultdict(int)
    for entry in the_plan["entries"]:
        newest[entry["canvas_id"]] = max(newest[entry["canvas_id"]], entry["file_id"])
    kept = []
    for uid, export in sorted(newest.items(), key=lambda item: int(item[0])):
        student = the_plan["students"][uid]
        if uid not in previous or not (course.root / "submitted" / student / assignment).is_dir():
            continue
        collected = max(f["file_id"] for f in previous[uid]["files"])
        if export < collected:
            kept.append({"student": student, "canvas_id": uid, "collected": collected, "export": export,
                         "submission": {**previous[uid], "matched_by": the_plan["matched_by"][uid]}})
    older = {row["canvas_id"] for row in kept}
    the_plan["entries"] = [e for e in the_plan["entries"] if e["canvas_id"] not in older]
    return kept


def _report(course: Course, assignment: str, zip_path: Path, the_plan: dict, manifest: dict,
            kept: list[dict]) -> dict:
    students, matched_by = the_plan["students"], the_plan["matched_by"]
    known = standins(course.root)
    submissions = {row["student"]: row["submission"] for row in kept}
    for record in manifest["files"]:
        uid = record["canvas_id"]
        student = students[uid]
        sub = submissions.setdefault(student, {
            "canvas_id": uid, "prefixes": the_plan["prefixes"][uid], "matched_by": matched_by[uid], "late": False,
            "submitted_at": (the_plan["timestamps"][student] + "+00:00") if student in the_plan["timestamps"] else None,
            "files": []})
        sub["late"] = sub["late"] or record["late"]
        sub["files"].append({k: v for k, v in record.items() if k != "canvas_id"})
    on_roster = sorted(s for s in roster_of(course.db_url) if s not in known)
    roster_size = len(on_roster)
    not_on_roster = [{"student": students[uid], "canvas_id": uid, "prefix": the_plan["prefixes"][uid][0]}
                     for uid, how in matched_by.items() if how == "stand-in" and students[uid] in submissions]
    notes = list(the_plan["notes"])
    marked = sorted(s for s, sub in submissions.items() if sub["late"])
    untimed = sorted(s for s, sub in submissions.items() if not sub["submitted_at"])
    how = ("put a timestamps.csv (student_id,timestamp: the Canvas id or login, ISO 8601; Canvas's gradebook shows "
           "each submission's time) at the top of the zip and collect again")
    warnings = [] if not untimed else [
        "the export carries no submission times (Canvas's does not), so lateness rests on Canvas's late_ marker in "
        f"the file names alone ({len(marked)} student(s) marked late): course.toml's [late] policy cannot judge how "
        f"late, and applies no penalty; {how}"] if not the_plan["has_timestamps"] else [
        f"no submission time for {', '.join(untimed)} in timestamps.csv"
        + (f" (marked late by Canvas: {', '.join(s for s in untimed if s in marked)})" if set(untimed) & set(marked)
           else "") + f": their lateness is not judged; {how}"]
    for row in the_plan["refused"] + manifest["refused"] + the_plan["superseded"]:
        row.setdefault("student", students.get(row.get("canvas_id")))
    return {
        "assignment": assignment, "zip": str(zip_path), "roster": roster_size,
        "assumption": None if roster_size else (
            "no roster in the gradebook: each student is named after Canvas's file-name prefix (their squashed "
            "name, not their login) and carries their Canvas id; to use logins, import the roster "
            "(python -m autograder roster canvas_gradebook.csv: it moves these submissions to the logins) and "
            "collect again"),
        "students": sorted(submissions),
        "files": {s: sorted(f["file"] for f in sub["files"]) for s, sub in sorted(submissions.items())},
        "submissions": dict(sorted(submissions.items())),
        "not_on_roster": not_on_roster if roster_size else [],
        "roster_without_submission": [s for s in on_roster if s not in submissions],
        "superseded": the_plan["superseded"],
        "kept_newer": [{k: v for k, v in row.items() if k != "submission"} for row in kept],
        "refused": the_plan["refused"] + manifest["refused"],
        "unmatched": sorted(the_plan["unmatched"]),
        "marked_late_by_lms": sorted(s for s, sub in submissions.items() if sub["late"]),
        "timestamps": len(the_plan["timestamps"]),
        "without_notebook": sorted(s for s, sub in submissions.items()
                                   if f"{assignment}.ipynb" not in {f["file"] for f in sub["files"]}),
        "notes": notes,
        "warnings": warnings,
    }


def _settle(course: Course, assignment: str, the_plan: dict, report: dict) -> None:
    """After nbgrader's transfer: the Canvas ids and stand-ins into the gradebook, modes made sane (0755 folders,
    0644 files, whatever the umask)."""
    collected = {uid: the_plan["students"][uid] for uid in the_plan["students"]
                 if the_plan["students"][uid] in report["submissions"]}
    record_lms_ids(course.db_url, {student: uid for uid, student in collected.items()
                                   if the_plan["matched_by"][uid] != "canvas id"})
    record_standins(course.root, {student: {"canvas_id": uid, "prefix": the_plan["prefixes"][uid][0]}
                                  for uid, student in collected.items() if the_plan["matched_by"][uid] == "stand-in"})
    for student in report["submissions"]:
        folder = course.root / "submitted" / student / assignment
        for path in (folder.parent.parent, folder.parent, folder):
            os.chmod(path, FOLDER_MODE)
        for path in folder.iterdir():
            if path.is_file() and not path.is_symlink():
                os.chmod(path, FILE_MODE)


def _log_report(report: dict, log) -> None:
    log(f"collected {len(report['students'])} student(s) from {Path(report['zip']).name} "
        f"({'roster: ' + str(report['roster']) + ' student(s)' if report['roster'] else 'no roster'}); "
        f"{len(report['refused'])} refused, {len(report['unmatched'])} unmatched file(s)")
    if report["assumption"]:
        log(f"  ASSUMED: {report['assumption']}")
    for row in report["not_on_roster"]:
        log(f"  not on the roster: Canvas id {row['canvas_id']} ({row['prefix']}) collected as {row['student']!r}, "
            f"with their Canvas id; if they belong to the course, add them to the roster and import it")
    if report["roster_without_submission"]:
        log(f"  on the roster, no submission: {', '.join(report['roster_without_submission'])}")
    for row in report["superseded"]:
        log(f"  {row['student']}: kept the newest upload {row['kept']}, not the older {row['entry']}")
    for row in report["kept_newer"]:
        log(f"  {row['student']}: kept the submission collected before (Canvas file ids up to {row['collected']}); "
            f"this export holds an older one (up to {row['export']}): not collected (to collect it all the same, "
            f"remove submitted/{row['student']}/{report['assignment']} and collect again)")
    for row in report["refused"]:
        who = f"{row['student']}: " if row.get("student") else ""
        log(f"  refused: {who}{row['entry']}: {shown(row['reason'], 2000)}")
    for entry in report["unmatched"]:
        log(f"  unmatched (not a Canvas submission name): {entry}")
    for student in report["without_notebook"]:
        log(f"  {student}: no {report['assignment']}.ipynb in the export")
    if report["marked_late_by_lms"]:
        log(f"  marked late by Canvas: {', '.join(report['marked_late_by_lms'])}")
    for note in report["notes"]:
        log(f"  note: {note}")
    for warning in report["warnings"]:
        log(f"  WARNING: {warning}")
