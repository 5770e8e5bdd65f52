"""The grader's side of the course (never shipped to students): hidden checks, the isolated judge, reference
solutions, and the TA pipeline (``python -m autograder``)."""
