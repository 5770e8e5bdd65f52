"""What every assignment's checks share: the failure type and the written-answers check."""

from __future__ import annotations

from course_lib.answers import answer_problems


class CheckFailed(AssertionError):
    """A verdict's failure; its message is what the student reads."""


def check_answers_complete(obs: dict, ctx: dict) -> str:
    """Every written answer is filled in (``ctx["answers"]``: grade id → Markdown source)."""
    problems = answer_problems(ctx["answers"])
    if problems:
        raise CheckFailed("; ".join(f"{gid}: {why}" for gid, why in sorted(problems.items())))
    return f"all {len(ctx['answers'])} written answers are filled in"
