"""What every assignment's checks share: the failure type, the context the judge hands them, partial credit over
weighted parts, and the written-answers check.

A check returns a message (full points), raises ``CheckFailed`` (no points), or, when it is made of weighted parts
(``score_parts``), returns ``PartialCredit``: each part's result as data (``PartScore``: name, points earned, points
available, message), from which its fraction and its message ("shapes (3/3 points): ...; shortcut (0/2 points): ...")
follow. A part's points are in the check's points; a test keeps them adding up to the check's declared points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autograder.assignment import CheckContext
from course_lib.answers import answer_problems, describe_problems


class CheckFailed(AssertionError):
    """A verdict's failure; its message is what the student reads."""


@dataclass(frozen=True)
class PartScore:
    """One weighted part of a check, scored: ``points`` of ``max_points`` and why (what passed, or what to fix)."""

    name: str
    points: float
    max_points: float
    message: str

    @property
    def passed(self) -> bool:
        return self.points >= self.max_points

    def line(self) -> str:
        return f"{self.name} ({self.points:g}/{self.max_points:g} points): {self.message}"


@dataclass(frozen=True)
class PartialCredit:
    """A check made of weighted parts, scored part by part (all, some or none of them passed)."""

    parts: tuple[PartScore, ...]

    @property
    def fraction(self) -> float:
        total = sum(part.max_points for part in self.parts)
        return sum(part.points for part in self.parts) / total if total else 0.0

    @property
    def message(self) -> str:
        return "; ".join(part.line() for part in self.parts)


@dataclass(frozen=True)
class Part:
    """One weighted part of a check: ``run()`` returns its message or raises ``CheckFailed``."""

    name: str
    points: float
    run: Callable[[], str]


def score_parts(parts: list[Part]) -> PartialCredit:
    """Runs every part (one failing part never hides the others) and scores each: its points when it passes, none
    when it raises (``CheckFailed``, or any error on malformed observations, which fails that part only)."""
    scored = []
    for part in parts:
        try:
            scored.append(PartScore(part.name, part.points, part.points, part.run()))
        except CheckFailed as err:
            scored.append(PartScore(part.name, 0.0, part.points, str(err)))
        except Exception as err:  # malformed observations (a forged file) fail this part only
            scored.append(PartScore(part.name, 0.0, part.points, f"could not be checked ({type(err).__name__}: {err})"))
    return PartialCredit(tuple(scored))


def check_answers_complete(obs: dict, ctx: CheckContext) -> str:
    """Every written answer is filled in (``ctx.answers``: grade id → Markdown source)."""
    problems = answer_problems(ctx.answers)
    if problems:
        raise CheckFailed("; ".join(describe_problems(problems)))  # "Q2: ...; Q10: ...", as the notebook numbers them
    return f"all {len(ctx.answers)} written answers are filled in"
