"""Originality of the notebooks against the two source documents (``../shared/seeds``).

Text is normalised (lower case, words of letters and digits, everything else a separator), and every run of
consecutive words of a document is fingerprinted by a short hash, for two run lengths: eight words (no notebook
cell may share one with a document) and six words (a notebook may share at most ``MAX_SHARED_SIX`` of them in all,
for the names and phrases a field cannot avoid). The fingerprints, not the documents, are committed
(``seed_fingerprints.txt`` for eight words, ``seed_fingerprints_6.txt`` for six), so the check runs on machines that
do not have the documents, and no document text is stored in the clear.

Regenerate the fingerprints after the documents change:
``python tests/originality.py --write [--seeds DIR]`` (default DIR: ``../shared/seeds`` beside the repository)
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"
DOCUMENTS = ("homework_questions.md", "segmentation_concepts.txt")
RUN = 8  # words: no cell may share a run this long
SHORT_RUN = 6  # words: a notebook may share at most MAX_SHARED_SIX runs this long
MAX_SHARED_SIX = 5
FINGERPRINTS = {RUN: Path(__file__).with_name("seed_fingerprints.txt"),
                SHORT_RUN: Path(__file__).with_name("seed_fingerprints_6.txt")}


def words(text: str) -> list[str]:
    """Lower-case words of letters and digits, in order (punctuation, markup and maths signs separate them)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def fingerprint(run: tuple[str, ...] | list[str]) -> str:
    return hashlib.sha256(" ".join(run).encode()).hexdigest()[:16]


def runs(text: str, length: int = RUN) -> list[tuple[str, ...]]:
    ws = words(text)
    return [tuple(ws[i:i + length]) for i in range(len(ws) - length + 1)]


def document_fingerprints(folder: Path = SEEDS, length: int = RUN) -> set[str]:
    return {fingerprint(r) for name in DOCUMENTS for r in runs((folder / name).read_text(encoding="utf-8"), length)}


def committed_fingerprints(length: int = RUN) -> set[str]:
    return set(FINGERPRINTS[length].read_text().split())


def shared_runs(notebook: Path, fingerprints: set[str], length: int = RUN) -> list[tuple[str, str]]:
    """``(cell, words)`` for every run of ``length`` words in a cell of ``notebook`` that a document also has."""
    found = []
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index}"
        for r in runs("".join(cell["source"]), length):
            if fingerprint(r) in fingerprints:
                found.append((name, " ".join(r)))
    return found


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit(__doc__)
    folder = Path(sys.argv[sys.argv.index("--seeds") + 1]) if "--seeds" in sys.argv else SEEDS
    for length, path in FINGERPRINTS.items():
        path.write_text("\n".join(sorted(document_fingerprints(folder, length))) + "\n")
        print(f"wrote {len(committed_fingerprints(length))} fingerprints of {length}-word runs to {path}")
