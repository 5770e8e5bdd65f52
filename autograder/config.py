"""Where the grader lives. The term's graded data and secret are the course's (``autograder.term``)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
