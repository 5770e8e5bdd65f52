"""Checks on a notebook's written answers: filled in (not the placeholder), long enough, and a complete results
table whose figures stand for the checkpoint. Used by the notebook's own check cells and by the grader, so both
apply the same rule; the notebook's cells add what only a running kernel can tell (whether the saved file is the
one on the student's screen).

The results table (Q1) is read the ways a number is usually written: fractions (mIoU, pixel accuracy) as 0.442,
44.2 % or 44.2; the parameter count as printed (225797, 225,797, 225 797). A count rounded with a suffix (225.8k,
0.23M) is read as the number it stands for (225,800), so it matches the model only if the model has exactly that
many parameters, and the message then says it was rounded.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

PLACEHOLDER = "YOUR ANSWER HERE"
MIN_WORDS = 15
TABLE_ID = "q1_results_table"
MIOU_TOLERANCE = 0.01  # the table's mIoU may differ from the recomputed one by this much (rounding)
RATIOS = ("miou", "pixel_accuracy")  # rows that are fractions: 44.2 % and 44.2 both mean 0.442
COUNTS = ("num_parameters",)  # rows that are whole numbers, written as printed
SUFFIXES = {"k": 1e3, "m": 1e6}  # 225.8k, 0.23M: a rounded count

_ROWS = {
    "miou": r"validation\s+miou",
    "pixel_accuracy": r"pixel\s+accuracy",
    "num_parameters": r"parameters",
    "training_minutes": r"training\s+time",
}
_NUMBER = re.compile(r"-?\d+(?:[,\u202f\u00a0 _]\d{3})*(?:\.\d*)?(?:[eE]-?\d+)?")
_SUFFIX = re.compile(r"\s*([kKmM])(?![a-zA-Z])")


def _value_cells(text: str) -> dict[str, str]:
    """The value cell of each row of the results table that is present: ``{key: "225,797"}``."""
    cells_by_key: dict[str, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        for key, pattern in _ROWS.items():
            if key not in cells_by_key and re.search(pattern, cells[0], flags=re.I):
                cells_by_key[key] = cells[1]
    return cells_by_key


def _read(key: str, cell: str) -> tuple[float | int | None, bool]:
    """(the value of one table cell, whether it was a count rounded with a k/M suffix)."""
    if key not in COUNTS:  # a fraction or a time is never in the thousands: 0,442 is a decimal comma
        cell = re.sub(r"(?<![\d,.])(\d+),(\d+)(?![\d,.])", r"\1.\2", cell)
    number = _NUMBER.search(cell)
    if not number:
        return None, False
    try:
        value = float(re.sub(r"[,\u202f\u00a0 _]", "", number.group(0)))
    except ValueError:
        return None, False
    rest = cell[number.end():]
    if key in COUNTS:
        suffix = _SUFFIX.match(rest)
        if suffix:
            return value * SUFFIXES[suffix.group(1).lower()], True
        return (int(value) if value.is_integer() else value), False
    percent = "%" in rest or (key in RATIOS and 1 < value <= 100)
    return (value / 100 if key in RATIOS and percent else value), False


def parse_results_table(text: str) -> dict[str, float | int | None]:
    """Values of the homework's results table (Markdown rows ``| Metric | Value |``); missing values are None.

    Fractions (mIoU, pixel accuracy) are accepted as 0.442, 44.2 % or 44.2 (a fraction cannot exceed 1, so a value
    above 1 is read as a percentage) and returned as fractions. The parameter count is returned as an ``int`` when
    written as a whole number (225797, 225,797, 225 797 or 225797.0); a count with a k or M suffix (225.8k) as the
    float it stands for (225800.0), which ``parameter_count_problem`` names as rounded."""
    cells = _value_cells(text)
    return {key: _read(key, cells[key])[0] if key in cells else None for key in _ROWS}


def describe_table(values: dict[str, float | int | None]) -> str:
    """A parsed table in words, figures formatted as the table holds them: ``"mIoU 0.5349, pixel accuracy 0.9165,
    225,797 parameters, 1.82 min"``; a missing value is shown as ``(missing)``."""
    def shown(key: str, form: str) -> str:
        value = values.get(key)
        return "(missing)" if value is None else form.format(value)

    count = values.get("num_parameters")
    count_form = "{:,}" if isinstance(count, int) else "{:g}"  # a float: written rounded (225.8k) or with a point
    return (f"mIoU {shown('miou', '{:.4f}')}, pixel accuracy {shown('pixel_accuracy', '{:.4f}')}, "
            f"{shown('num_parameters', count_form)} parameters, {shown('training_minutes', '{:g}')} min")


def miou_disagreement(reported: float | None, measured: float, tolerance: float = MIOU_TOLERANCE) -> str | None:
    """Why the table's mIoU ``reported`` (a fraction, as parsed) does not stand for ``measured``; None if it does."""
    if reported is None:
        return "the results table (Q1) reports no validation mIoU"
    if abs(reported - measured) > tolerance:
        return (f"the table reports mIoU {reported:.4f} but the checkpoint scores {measured:.4f} "
                f"(they must agree within {tolerance})")
    return None


def parameter_count_problem(text: str, counted: int) -> str | None:
    """Why the table's parameter row (in the Markdown ``text`` of the Q1 answer) is not the model's ``counted``
    parameters; None if it is. The verdict is the grader's (``check_parameter_count``): the value parsed by
    ``parse_results_table``, as a whole number, equals the count. The message says what to write instead."""
    cells = _value_cells(text)
    if "num_parameters" not in cells or _read("num_parameters", cells["num_parameters"])[0] is None:
        return "the results table (Q1) reports no parameter count"
    value, rounded = _read("num_parameters", cells["num_parameters"])
    if int(value) == counted:
        return None
    exact = f"write it exactly as printed: {counted} or {counted:,}"
    written = cells["num_parameters"]
    if rounded:
        return f"the table's parameter count {written!r} is rounded; {exact}"
    if re.fullmatch(r"\d{1,3}(\.\d{3})+", written.strip()):
        return f"the table's parameter count {written!r} reads as {value:g} (a decimal point, not a separator); {exact}"
    return f"the table reports {int(value):,} parameters; your model has {counted:,}: {exact}"


def answer_problems(answers: dict[str, str], min_words: int = MIN_WORDS, table_id: str = TABLE_ID) -> dict[str, str]:
    """What is wrong with each answer: ``{grade_id: reason}``; empty when every answer is filled in."""
    problems = {}
    for gid, text in answers.items():
        if gid == table_id:
            missing = [k for k, v in parse_results_table(text).items() if v is None]
            if missing:
                problems[gid] = f"the results table lacks {missing}"
            continue
        words = len(re.findall(r"\w+", text.replace(PLACEHOLDER, "")))
        if PLACEHOLDER in text and words < min_words:
            problems[gid] = "still the placeholder"
        elif words < min_words:
            problems[gid] = f"only {words} words (at least {min_words} expected)"
    return problems


def question_label(grade_id: str) -> str:
    """The question an answer cell answers, as the notebook numbers it: ``"q10_miou_vs_accuracy"`` → ``"Q10"``
    (an id without a question number is returned as it is)."""
    match = re.match(r"[qQ](\d+)_", grade_id)
    return f"Q{match.group(1)}" if match else grade_id


def describe_problems(problems: dict[str, str]) -> list[str]:
    """``answer_problems``' result as lines in question order: ``["Q2: still the placeholder", ...]``."""
    def order(grade_id: str) -> tuple[int, str]:
        match = re.match(r"[qQ](\d+)_", grade_id)
        return (int(match.group(1)) if match else 10**6, grade_id)

    return [f"{question_label(gid)}: {problems[gid]}" for gid in sorted(problems, key=order)]


def notebook_answers(path: str | Path) -> dict[str, str]:
    """``{grade_id: text}`` of the manually graded Markdown answer cells of a saved notebook."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    answers = {}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "markdown" and meta.get("solution") and meta.get("grade_id") not in answers:
            source = cell.get("source", "")
            answers[meta["grade_id"]] = "".join(source) if isinstance(source, list) else source
    return answers


def _kernel_history() -> tuple[int, list[str]] | None:
    """(the number of the cell running now, the raw source of every cell this kernel ran) in a live Jupyter kernel
    of the student's (not under nbgrader, which sets ``NBGRADER_EXECUTION``); None elsewhere."""
    import os
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or shell.__class__.__name__ != "ZMQInteractiveShell" or os.environ.get("NBGRADER_EXECUTION"):
        return None
    raw = list(shell.history_manager.input_hist_raw)  # [""] + one entry per run; the running cell's is the last
    return len(raw) - 1, raw


def saved_after_last_run(path: str | Path) -> bool | None:
    """Whether the saved notebook holds the last cell this kernel ran before the one running now.

    JupyterLab keeps what the student types in the browser until the notebook is saved; the kernel never sees a
    Markdown cell. What it does know is which code ran, in which order: a saved file that holds cells this kernel ran
    (same execution number, same code) but not the last one was saved before that run, so the screen holds changes
    the file does not. Returns True (the file holds the last run), False (it holds this kernel's runs but not the
    last: unsaved changes) or None (nothing to tell: not in a student's kernel, the first cell run, or a file saved
    from another kernel session)."""
    history = _kernel_history()
    if history is None:
        return None
    current, raw = history
    if current < 2:
        return None
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    saved = {}
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and isinstance(cell.get("execution_count"), int):
            source = cell.get("source", "")
            saved[cell["execution_count"]] = ("".join(source) if isinstance(source, list) else source).strip()
    ran = lambda number: 0 < number < current and saved.get(number) == raw[number].strip() != ""
    if ran(current - 1):
        return True
    return False if any(ran(number) for number in saved) else None


def saved_answer_problems(path: str | Path, log=print) -> dict[str, str]:
    """The notebook's answers check: ``answer_problems`` of the answers in the *saved* file at ``path`` (what the
    grader reads), printed in question order (Q2, ..., Q12) with what the kernel can tell about the file: saved
    before the last cell was run (then the screen holds changes the file lacks, perhaps the answers), or when it
    was saved. Returns the problems (empty: every answer is filled in)."""
    path = Path(path)
    problems = answer_problems(notebook_answers(path))
    if not problems:
        return problems
    fresh = saved_after_last_run(path)
    if fresh is False:
        log(f"{path.name} on disk is older than the last cell you ran: JupyterLab has changes it has not saved, perhaps "
            "your answers. Save the notebook (Ctrl+S) and run this cell again. In the saved file:")
    elif _kernel_history() is not None:
        age = time.time() - path.stat().st_mtime
        log(f"In {path.name} as saved at {time.strftime('%H:%M:%S', time.localtime(path.stat().st_mtime))} "
            f"({age / 60:.0f} min ago):" if age >= 90 else f"In {path.name} as saved {age:.0f} s ago:")
    for line in describe_problems(problems):
        log(f"  {line}")
    if fresh is not False and _kernel_history() is not None:
        log("If an answer listed here is filled in on your screen, it is not saved yet: save the notebook (Ctrl+S) "
            "and run this cell again.")
    return problems
