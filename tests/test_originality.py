"""No notebook cell shares a run of eight words with the source documents the assignments were written from."""

from __future__ import annotations

import pytest

from originality import REPO, SEEDS, committed_fingerprints, document_fingerprints, runs, shared_runs

NOTEBOOKS = sorted([*REPO.glob("source/*/*.ipynb"), *REPO.glob("release/*/*.ipynb")])


def test_there_are_notebooks_to_check():
    assert {p.parent.parent.name for p in NOTEBOOKS} == {"source", "release"}
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_no_cell_shares_eight_words_with_the_source_documents(notebook):
    shared = shared_runs(notebook, committed_fingerprints())
    assert not shared, "cells that repeat the source documents (rewrite them in the project's own words):\n" + \
        "\n".join(f"  {cell}: {text}" for cell, text in shared)


def test_the_check_finds_a_copied_sentence(tmp_path):
    """The oracle works: a cell quoting a document is caught, a reworded one is not."""
    import json

    copied = "Why does the model output 21 channels instead of 1? What computational trade-offs does this create?"
    reworded = "Your model ends in 21 output channels, not one: why, and at what computational price?"
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": [s]}
                                        for s in (copied, reworded)]}))
    shared = shared_runs(nb, committed_fingerprints())
    assert shared and {cell for cell, _ in shared} == {"cell 0"}
    assert len(runs("one two three four five six seven")) == 0  # shorter than a run


def test_committed_fingerprints_are_those_of_the_documents():
    if not SEEDS.is_dir():
        pytest.skip(f"the source documents are not on this machine ({SEEDS}); the committed fingerprints are used")
    assert committed_fingerprints() == document_fingerprints(), \
        "the documents changed: run `python tests/originality.py --write` and commit tests/seed_fingerprints.txt"
