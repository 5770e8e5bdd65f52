"""Shared fixtures. The repository root is put on sys.path so that tests can import ``autograder``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

torch.set_num_threads(2)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def executed_hw_course(tmp_path_factory):
    """A course directory whose source/segmentation_hw notebook has been executed top to bottom in QUICK mode,
    as an instructor would: both models trained, their checkpoints and results saved next to the notebook,
    and the Q1 answer filled with the printed table. Shared by every test that needs a trained reference."""
    from notebooks import execute_notebook, fill_results_table, make_course

    course = make_course(tmp_path_factory.mktemp("hw"))
    notebook = course / "source" / "segmentation_hw" / "segmentation_hw.ipynb"
    execute_notebook(notebook, timeout=1200)
    fill_results_table(notebook)
    return course
