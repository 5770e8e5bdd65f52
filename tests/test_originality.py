"""No notebook cell shares a run of eight words with the source documents the assignments were written from, and no
notebook shares more than five runs of six words with them (the model answers are the project's own words)."""

from __future__ import annotations

import os

import pytest

from originality import (
    MAX_SHARED_SIX, REPO, RUN, SEEDS, SHORT_RUN, committed_fingerprints, document_fingerprints, runs, shared_runs,
)

NOTEBOOKS = sorted([*REPO.glob("source/*/*.ipynb"), *REPO.glob("release/*/*.ipynb")])
SEED_FOLDER = os.environ.get("SEGMENTATION_SEEDS", str(SEEDS))


def test_there_are_notebooks_to_check():
    assert {p.parent.parent.name for p in NOTEBOOKS} == {"source", "release"}
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_no_cell_shares_eight_words_with_the_source_documents(notebook):
    shared = shared_runs(notebook, committed_fingerprints(RUN), RUN)
    assert not shared, "cells that repeat the source documents (rewrite them in the project's own words):\n" + \
        "\n".join(f"  {cell}: {text}" for cell, text in shared)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_no_notebook_shares_more_than_five_six_word_runs(notebook):
    shared = shared_runs(notebook, committed_fingerprints(SHORT_RUN), SHORT_RUN)
    assert len(shared) <= MAX_SHARED_SIX, f"{len(shared)} six-word runs shared with the source documents:\n" + \
        "\n".join(f"  {cell}: {text}" for cell, text in shared)


def test_the_check_finds_a_copied_sentence(tmp_path):
    """The oracle works at both lengths: a cell quoting a document is caught, a reworded one is not."""
    import json

    copied = "Why does the model output 21 channels instead of 1? What computational trade-offs does this create?"
    reworded = "Your model ends in 21 output channels, not one: why, and at what computational price?"
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": [s]}
                                        for s in (copied, reworded)]}))
    for length in (RUN, SHORT_RUN):
        shared = shared_runs(nb, committed_fingerprints(length), length)
        assert shared and {cell for cell, _ in shared} == {"cell 0"}, length
    assert len(runs("one two three four five six seven")) == 0  # shorter than a run
    assert len(runs("one two three four five six seven", SHORT_RUN)) == 2


def test_committed_fingerprints_hold_no_document_text():
    """Only hashes are committed: 16 hexadecimal digits a line, never a word of the documents."""
    for length in (RUN, SHORT_RUN):
        lines = committed_fingerprints(length)
        assert len(lines) > 1000 and all(len(line) == 16 and int(line, 16) >= 0 for line in lines)


def test_committed_fingerprints_are_those_of_the_documents():
    from pathlib import Path

    folder = Path(SEED_FOLDER)
    if not folder.is_dir():
        pytest.skip(f"the source documents are not on this machine ({folder}); the committed fingerprints are used")
    for length in (RUN, SHORT_RUN):
        assert committed_fingerprints(length) == document_fingerprints(folder, length), \
            "the documents changed: run `python tests/originality.py --write` and commit tests/seed_fingerprints*.txt"
