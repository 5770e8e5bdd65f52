"""The grader's one error type for problems a TA or instructor must fix (a missing zip, a course that is not one, a
release that fails). Library functions raise it with a message that says what is wrong and what to do; only the
command lines (``autograder.cli``, ``bench/demo.py``) turn it into an exit status."""


class GraderError(Exception):
    """A problem the person running the grader must fix; the message says what and how."""
