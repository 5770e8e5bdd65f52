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
