"""Checks on a notebook's written answers: filled in (not the placeholder), long enough, and a complete
results table whose mIoU agrees with the checkpoint. Used by the notebook's own check cells and by the grader, so
both apply the same rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

PLACEHOLDER = "YOUR ANSWER HERE"
MIN_WORDS = 15
TABLE_ID = "q1_results_table"
MIOU_TOLERANCE = 0.01  # the table's mIoU may differ from the recomputed one by this much (rounding)
RATIOS = ("miou", "pixel_accuracy")  # rows that are fractions: 44.2 % and 44.2 both mean 0.442

_ROWS = {
    "miou": r"validation\s+miou",
    "pixel_accuracy": r"pixel\s+accuracy",
    "num_parameters": r"parameters",
    "training_minutes": r"training\s+time",
}


def parse_results_table(text: str) -> dict[str, float | None]:
    """Values of the homework's results table (Markdown rows ``| Metric | Value |``); missing values are None.

    Fractions (mIoU, pixel accuracy) are accepted as 0.442, 44.2 % or 44.2 (a fraction cannot exceed 1, so a value
    above 1 is read as a percentage) and returned as fractions; thousands separators are allowed (225,797)."""
    values: dict[str, float | None] = dict.fromkeys(_ROWS)
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        for key, pattern in _ROWS.items():
            if values[key] is None and re.search(pattern, cells[0], flags=re.I):
                number = re.search(r"-?\d[\d,]*\.?\d*(?:[eE]-?\d+)?", cells[1])
                if number:
                    try:
                        value = float(number.group(0).replace(",", ""))
                    except ValueError:
                        continue
                    percent = "%" in cells[1][number.end():] or (key in RATIOS and 1 < value <= 100)
                    values[key] = value / 100 if key in RATIOS and percent else value
    return values


def miou_disagreement(reported: float | None, measured: float, tolerance: float = MIOU_TOLERANCE) -> str | None:
    """Why the table's mIoU ``reported`` (a fraction, as parsed) does not stand for ``measured``; None if it does."""
    if reported is None:
        return "the results table (Q1) reports no validation mIoU"
    if abs(reported - measured) > tolerance:
        return (f"the table reports mIoU {reported:.4f} but the checkpoint scores {measured:.4f} "
                f"(they must agree within {tolerance})")
    return None


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
