"""What every assignment's checks share: the failure type, partial credit over weighted parts, and the
written-answers check.

A check returns a message (full points), raises ``CheckFailed`` (no points), or, when it is made of weighted parts
(``score_parts``), returns ``PartialCredit`` for the parts that passed. Weights are in the cell's points, so a
message reads "shapes (3/3 points): ...; shortcut (0/2 points): ..."; a test keeps the weights of each check adding
up to its cell's points in the notebook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from course_lib.answers import answer_problems


class CheckFailed(AssertionError):
    """A verdict's failure; its message is what the student reads."""


@dataclass(frozen=True)
class PartialCredit:
    """Some parts of a check passed: ``fraction`` of its points (0 < fraction < 1) and a message per part."""

    fraction: float
    message: str


@dataclass(frozen=True)
class Part:
    """One weighted part of a check: ``run()`` returns its message or raises ``CheckFailed``."""

    name: str
    points: float
    run: Callable[[], str]


def score_parts(parts: list[Part]) -> str | PartialCredit:
    """Runs every part (one failing part never hides the others). All pass: their messages; none: ``CheckFailed``
    with every part's reason; some: ``PartialCredit`` for the points of those that passed."""
    earned, lines = 0.0, []
    for part in parts:
        try:
            message = part.run()
            earned += part.points
            lines.append(f"{part.name} ({part.points:g}/{part.points:g} points): {message}")
        except CheckFailed as err:
            lines.append(f"{part.name} (0/{part.points:g} points): {err}")
        except Exception as err:  # malformed observations (a forged file) fail this part only
            lines.append(f"{part.name} (0/{part.points:g} points): could not be checked ({type(err).__name__}: {err})")
    total = sum(part.points for part in parts)
    message = "; ".join(lines)
    if earned == total:
        return message
    if earned == 0:
        raise CheckFailed(message)
    return PartialCredit(earned / total, message)


def check_answers_complete(obs: dict, ctx: dict) -> str:
    """Every written answer is filled in (``ctx["answers"]``: grade id → Markdown source)."""
    problems = answer_problems(ctx["answers"])
    if problems:
        raise CheckFailed("; ".join(f"{gid}: {why}" for gid, why in sorted(problems.items())))
    return f"all {len(ctx['answers'])} written answers are filled in"
