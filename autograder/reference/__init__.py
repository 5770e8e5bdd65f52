"""Reference solutions of the graded exercises (grader-only; never shipped to students)."""
