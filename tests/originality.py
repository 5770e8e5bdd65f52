"""Originality of the notebooks against the two source documents (``../shared/seeds``): no run of eight words.

Text is normalised (lower case, words of letters and digits, everything else a separator), and every run of
``RUN`` consecutive words of a document is fingerprinted by a short hash. The fingerprints, not the documents, are
committed (``seed_fingerprints.txt``), so the check runs on machines that do not have the documents.

Regenerate the fingerprints after the documents change:  ``python tests/originality.py --write``
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
FINGERPRINTS = Path(__file__).with_name("seed_fingerprints.txt")
RUN = 8  # words


def words(text: str) -> list[str]:
    """Lower-case words of letters and digits, in order (punctuation, markup and maths signs separate them)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def fingerprint(run: tuple[str, ...] | list[str]) -> str:
    return hashlib.sha256(" ".join(run).encode()).hexdigest()[:16]


def runs(text: str) -> list[tuple[str, ...]]:
    ws = words(text)
    return [tuple(ws[i:i + RUN]) for i in range(len(ws) - RUN + 1)]


def document_fingerprints(folder: Path = SEEDS) -> set[str]:
    return {fingerprint(r) for name in DOCUMENTS for r in runs((folder / name).read_text(encoding="utf-8"))}


def committed_fingerprints() -> set[str]:
    return set(FINGERPRINTS.read_text().split())


def shared_runs(notebook: Path, fingerprints: set[str]) -> list[tuple[str, str]]:
    """``(cell, words)`` for every run of RUN words in a cell of ``notebook`` that a document also has."""
    found = []
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index}"
        for r in runs("".join(cell["source"])):
            if fingerprint(r) in fingerprints:
                found.append((name, " ".join(r)))
    return found


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit(__doc__)
    FINGERPRINTS.write_text("\n".join(sorted(document_fingerprints())) + "\n")
    print(f"wrote {len(committed_fingerprints())} fingerprints to {FINGERPRINTS}")
