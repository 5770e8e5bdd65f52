"""How long the concepts notebook takes a student: an estimate from the notebook itself, not yet a measurement.

For each topic it counts what a student must do: read the section's Markdown and its question (words), write the
graded functions (lines of the reference solution: docstrings, comments and blank lines left out), run the
experiment, and write an answer as long as the model answer (words, the TA's marking notes left out). The rates
below turn those counts into minutes; they are the assumptions of the estimate, stated once here and quoted by the
notebook's introduction (``tests/test_concepts_facts.py`` keeps the two in agreement). Replace them with
figures from a timed walk-through with students when one is made.

Usage: python bench/concepts_time.py
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "segmentation_concepts" / "segmentation_concepts.ipynb"
TOPICS = ("t1_panoptic", "t2_unet", "t3_roi_align", "t4_losses", "t5_atrous", "t6_metrics", "t7_sam",
          "t8_upsampling", "t9_imbalance", "t10_segformer")

READ_WORDS_PER_MINUTE = 100  # technical prose with formulas, read carefully once
CODE_MINUTES_PER_LINE = 1.5  # writing and debugging against the visible check, meeting the idea for the first time
ANSWER_WORDS_PER_MINUTE = 12  # composing a technical answer from the section just read
RUN_MINUTES = 3  # running the demo and reading its output
MARKING_NOTES = "**Marking notes"


def _code_lines(source: str) -> int:
    """Lines that hold code: no docstring, comment, solution marker or blank line."""
    tree = ast.parse(source)
    docstring_lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node) is not None:
            first = node.body[0]
            docstring_lines |= set(range(first.lineno, first.end_lineno + 1))
    code = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER):
            code |= {line for line in range(token.start[0], token.end[0] + 1) if line not in docstring_lines}
    return len(code)


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9]+", text))


def estimate(notebook: Path = NOTEBOOK) -> dict[str, int]:
    """Minutes per topic (rounded to 5), in notebook order."""
    import nbformat

    cells = [c for c in nbformat.read(notebook, as_version=4).cells]
    ids = [c.metadata.get("nbgrader", {}).get("grade_id", "") for c in cells]
    minutes = {}
    for number, topic in enumerate(TOPICS, start=1):
        start = ids.index(f"{topic}_md")
        end = ids.index(f"q{number}_answer")
        section = cells[start:end + 1]
        read = sum(_words(c.source) for c in section
                   if c.cell_type == "markdown" and not c.metadata["nbgrader"].get("solution"))
        lines = _code_lines(cells[ids.index(topic)].source)
        answer = _words(cells[end].source.split(MARKING_NOTES)[0])
        total = (read / READ_WORDS_PER_MINUTE + lines * CODE_MINUTES_PER_LINE + RUN_MINUTES
                 + answer / ANSWER_WORDS_PER_MINUTE)
        minutes[topic] = int(5 * round(total / 5))
    return minutes


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import print_table, write_json

    minutes = estimate()
    print_table("concepts notebook: estimated minutes per topic",
                [{"topic": t, "minutes": m} for t, m in minutes.items()])
    total = sum(minutes.values())
    print(f"total {total} min = {total / 60:.1f} h")
    write_json("concepts_time", {"rates": {"read_words_per_minute": READ_WORDS_PER_MINUTE,
                                           "code_minutes_per_line": CODE_MINUTES_PER_LINE,
                                           "answer_words_per_minute": ANSWER_WORDS_PER_MINUTE,
                                           "run_minutes": RUN_MINUTES},
                                 "minutes": minutes, "total_minutes": total})


if __name__ == "__main__":
    main()
