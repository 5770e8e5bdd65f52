"""The leak scan reads the solution and hidden-test markers the way nbgrader is configured to, so a course that
changes them in ``nbgrader_config.py`` is still protected."""

import nbformat

from autograder.leaks import Delimiters, hidden_lines, regions, scan, secret_lines

SECRET = "assert torch.allclose(block(x), expected_output_of_the_hidden_case)"


def course_with(tmp_path, config: str, source: str):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n" + config)
    folder = tmp_path / "source" / "hw"
    folder.mkdir(parents=True)
    cell = nbformat.v4.new_code_cell(source, metadata={"nbgrader": {"grade_id": "t", "grade": True, "points": 1}})
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), folder / "hw.ipynb")
    return folder / "hw.ipynb"


def test_nbgrader_defaults_without_a_config(tmp_path):
    assert Delimiters.of_course(tmp_path) == Delimiters()


def test_configured_delimiters_are_the_ones_searched(tmp_path):
    source = f"x = 1\n# >>> SECRET START\n{SECRET}\n# <<< SECRET END\nprint(x)\n"
    notebook = course_with(tmp_path, 'c.ClearHiddenTests.begin_test_delimeter = "SECRET START"\n'
                                     'c.ClearHiddenTests.end_test_delimeter = "SECRET END"\n', source)
    marks = Delimiters.of_course(tmp_path)
    assert marks.hidden == ("SECRET START", "SECRET END")
    assert regions(source, marks.hidden) == [SECRET + "\n"]
    assert hidden_lines(notebook) == {SECRET} and SECRET in secret_lines(notebook)
    (tmp_path / "feedback.html").write_text(f"<pre>{SECRET}</pre>")
    assert scan([tmp_path], {SECRET}, suffixes=(".html",)), "a hidden line in feedback must be found"


def test_a_line_that_is_also_visible_is_not_a_secret(tmp_path):
    source = f"{SECRET}\n### BEGIN HIDDEN TESTS\n{SECRET}\n### END HIDDEN TESTS\n"
    notebook = course_with(tmp_path, "", source)
    assert hidden_lines(notebook) == set() and secret_lines(notebook) == set()


def _cell(kind: str, source: str, **nbgrader):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(source, metadata={"nbgrader": nbgrader} if nbgrader else {})


def test_the_feedback_scan_reads_the_instructors_cells_never_the_students(tmp_path):
    """A student may write a hidden test's line anywhere in their own cells (an answer, a cell of their own, one
    whose metadata they made up): no leak. The instructor's test cell keeping it is one."""
    from autograder.leaks import hidden_in_instructor_cells, instructor_ids

    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    (tmp_path / "source" / "hw").mkdir(parents=True)
    source = tmp_path / "source" / "hw" / "hw.ipynb"
    test = f"x = 1\n### BEGIN HIDDEN TESTS\n{SECRET}\n### END HIDDEN TESTS\n"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        _cell("code", test, grade_id="t", grade=True, locked=True, points=1),
        _cell("markdown", "model answer", grade_id="q", grade=True, solution=True, points=1)]), source)
    assert instructor_ids(source) == {"t"}
    student = tmp_path / "autograded" / "mallory.ipynb"
    student.parent.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[
        _cell("code", "x = 1\n", grade_id="t", grade=True, locked=True, points=1),  # as OverwriteCells left it
        _cell("markdown", f"The README quotes `{SECRET}`", grade_id="q", grade=True, solution=True, points=1),
        _cell("code", SECRET),
        _cell("code", SECRET, grade_id="made_up", locked=True)]), student)
    assert hidden_in_instructor_cells([student], source) == []
    leaked = tmp_path / "autograded" / "leaked.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[_cell("code", test, grade_id="t", grade=True, locked=True)]), leaked)
    assert hidden_in_instructor_cells([student, leaked], source) == [f"{leaked}: {SECRET}"]


def test_a_hidden_line_the_student_submitted_is_theirs_not_a_leak(tmp_path):
    """Round 5: a student pastes a hidden line into the locked test cell and gives that cell metadata nbgrader cannot
    restore (``"points": "ten"``); the raw copy shown in place of the graded notebook holds the line in an
    instructor's cell. It is in the student's own submission, so it is theirs: no leak. The same line in a graded
    notebook whose submission lacks it is one."""
    from autograder.leaks import hidden_in_instructor_cells

    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    (tmp_path / "source" / "hw").mkdir(parents=True)
    source = tmp_path / "source" / "hw" / "hw.ipynb"
    test = f"x = 1\n### BEGIN HIDDEN TESTS\n{SECRET}\n### END HIDDEN TESTS\n"
    nbformat.write(nbformat.v4.new_notebook(cells=[_cell("code", test, grade_id="t", grade=True, locked=True,
                                                         points=1)]), source)
    pasted = nbformat.v4.new_notebook(cells=[_cell("code", f"x = 1\n{SECRET}\n", grade_id="t", grade=True,
                                                   locked=True, points="ten")])
    for folder in ("autograded", "submitted"):
        (tmp_path / folder / "eli").mkdir(parents=True)
        nbformat.write(pasted, tmp_path / folder / "eli" / "hw.ipynb")
    shown, own = tmp_path / "autograded" / "eli" / "hw.ipynb", tmp_path / "submitted" / "eli" / "hw.ipynb"
    assert hidden_in_instructor_cells([shown], source, {shown: own}) == []
    nbformat.write(nbformat.v4.new_notebook(cells=[_cell("code", "x = 1\n", grade_id="t")]), own)
    assert hidden_in_instructor_cells([shown], source, {shown: own}) == [f"{shown}: {SECRET}"]
    own.unlink()
    own.symlink_to(tmp_path / "autograded" / "eli" / "hw.ipynb")  # a link is never read as the student's text
    assert hidden_in_instructor_cells([shown], source, {shown: own}) == [f"{shown}: {SECRET}"]
