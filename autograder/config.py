"""Grader-side settings, overridable by environment variables (so a TA can change them without editing code)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Held-out scenes: synthetic data from a seed that only graders know. Change it every term
# (SEGMENTATION_HELDOUT_SEED) so that no published figure can be tuned to it.
HELDOUT_SEED = int(os.environ.get("SEGMENTATION_HELDOUT_SEED", "20261121"))
HELDOUT_SIZE = 500
# "synthetic" (default) or the folder holding VOCdevkit/ for grading FULL-mode submissions on VOC val.
GRADING_DATA = os.environ.get("SEGMENTATION_GRADING_DATA", "synthetic")
