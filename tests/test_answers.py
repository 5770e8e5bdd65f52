"""The written-answer rules shared by the notebook's check cells and the grader: the results table is read the
usual ways a number is written, and its mIoU is compared with the checkpoint's within the declared tolerance."""

import pytest

from course_lib.answers import (MIOU_TOLERANCE, answer_problems, describe_problems, describe_table, miou_disagreement,
                                parameter_count_problem, parse_results_table, question_label)

TABLE = """| Metric | Value |
|--------|-------|
| Final Validation mIoU | {miou} |
| Final Pixel Accuracy | {acc} |
| Total Model Parameters | {params} |
| Training Time (minutes) | 1.82 |
"""


@pytest.mark.parametrize("miou, acc", [("0.442", "0.9165"), ("44.2 %", "91.65 %"), ("44.2%", "91.65%"),
                                       ("44.2", "91.65"), ("0.4420 (val)", "0.9165")])
def test_fractions_are_read_as_fractions_or_percentages(miou, acc):
    values = parse_results_table(TABLE.format(miou=miou, acc=acc, params="225,797"))
    assert values["miou"] == pytest.approx(0.442) and values["pixel_accuracy"] == pytest.approx(0.9165)
    assert values["num_parameters"] == 225_797 and values["training_minutes"] == pytest.approx(1.82)


def test_counts_are_never_divided():
    assert parse_results_table(TABLE.format(miou="0.5", acc="0.9", params="42"))["num_parameters"] == 42


def test_a_missing_value_is_none_and_named_by_the_answers_check():
    text = TABLE.format(miou="", acc="0.9", params="42")
    assert parse_results_table(text)["miou"] is None
    assert answer_problems({"q1_results_table": text}) == {"q1_results_table": "the results table lacks ['miou']"}


def test_disagreement_within_the_tolerance_only():
    assert miou_disagreement(0.5349, 0.5349) is None
    assert miou_disagreement(0.53, 0.5349) is None  # rounded to two places
    assert miou_disagreement(0.5349 + MIOU_TOLERANCE * 1.5, 0.5349) is not None
    assert "reports no validation mIoU" in miou_disagreement(None, 0.5)


# The parameter row: the grader's check (autograder/checks/segmentation_hw.py::check_parameter_count) passes when
# int(parse_results_table(table)["num_parameters"]) is the model's count; the notebook's visible cell asks
# parameter_count_problem, which must give the same verdict and say what to write instead.
COUNT = 225_797


def _hidden_verdict(text: str, count: int) -> bool:
    """What the hidden check decides from the parsed table (its comparison, without the checkpoint's facts)."""
    reported = parse_results_table(text)["num_parameters"]
    return reported is not None and int(reported) == count


@pytest.mark.parametrize("written", ["225797", "225,797", "225 797", "225797.0", "225,797 (with downsampling)",
                                     "**225,797**"])
def test_the_count_as_printed_passes_both_checks(written):
    table = TABLE.format(miou="0.5349", acc="0.9165", params=written)
    assert parse_results_table(table)["num_parameters"] == COUNT
    assert isinstance(parse_results_table(table)["num_parameters"], int)  # shown as 225,797, never 225797.0
    assert _hidden_verdict(table, COUNT) and parameter_count_problem(table, COUNT) is None
    assert answer_problems({"q1_results_table": table}) == {}


@pytest.mark.parametrize("written, says", [("225.8k", "is rounded"), ("225.8 K", "is rounded"), ("0.23M", "is rounded"),
                                           ("226k", "is rounded"), ("225.797", "a decimal point"),
                                           ("123,456", "reports 123,456 parameters")])
def test_a_rounded_or_wrong_count_fails_both_checks_and_says_why(written, says):
    table = TABLE.format(miou="0.5349", acc="0.9165", params=written)
    problem = parameter_count_problem(table, COUNT)
    assert not _hidden_verdict(table, COUNT) and problem is not None and says in problem
    assert "225797 or 225,797" in problem  # what to write instead
    assert answer_problems({"q1_results_table": table}) == {}  # a wrong count is an answer: the answers check passes


def test_a_rounded_figure_that_is_the_exact_count_is_the_count():
    """Both checks compare numbers: 226k stands for 226,000, which a model of exactly that size has."""
    table = TABLE.format(miou="0.5", acc="0.9", params="226k")
    assert _hidden_verdict(table, 226_000) and parameter_count_problem(table, 226_000) is None


def test_no_parameter_row_is_named():
    table = TABLE.format(miou="0.5", acc="0.9", params="")
    assert parameter_count_problem(table, COUNT) == "the results table (Q1) reports no parameter count"
    assert not _hidden_verdict(table, COUNT)


def test_a_decimal_comma_is_read_in_fractions():
    values = parse_results_table(TABLE.format(miou="0,5349", acc="91,65 %", params="225797"))
    assert values["miou"] == pytest.approx(0.5349) and values["pixel_accuracy"] == pytest.approx(0.9165)


def test_the_table_is_described_with_its_figures_as_written():
    described = describe_table(parse_results_table(TABLE.format(miou="0.5349", acc="91.65 %", params="225797")))
    assert described == "mIoU 0.5349, pixel accuracy 0.9165, 225,797 parameters, 1.82 min"
    assert "(missing) parameters" in describe_table(parse_results_table(TABLE.format(miou="0.5", acc="0.9", params="")))


def test_problems_are_named_by_question_in_question_order():
    problems = {"q10_miou_vs_accuracy": "still the placeholder", "q2_tiers": "only 3 words (at least 15 expected)",
                "q1_results_table": "the results table lacks ['miou']", "Q1_answer": "still the placeholder"}
    lines = describe_problems(problems)
    assert [line.split(":")[0] for line in lines] == ["Q1", "Q1", "Q2", "Q10"]
    assert all("_" not in line.split(":")[0] for line in lines)
    assert question_label("q12_improvements") == "Q12" and question_label("summary") == "summary"


@pytest.mark.slow
def test_the_answers_check_tells_an_unsaved_notebook_from_an_unanswered_one(tmp_path, monkeypatch):
    """In a real kernel: runs cells, saves the notebook file as JupyterLab would at a given moment, and asks the
    notebook's answers check. A file saved before the last run is said to be behind the screen; a file saved after
    it lists what is missing by question; a saved answer is not listed."""
    import nbformat
    from jupyter_client.manager import start_new_kernel

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    path = tmp_path / "homework.ipynb"
    first, second = "x = 1", "y = x + 1"
    check = "from course_lib.answers import saved_answer_problems\nproblems = saved_answer_problems('homework.ipynb')"

    def save(runs: dict[str, int], answer: str) -> None:
        """The notebook as JupyterLab saves it: code cells with the execution counts they had, the answers."""
        nb = nbformat.v4.new_notebook()
        for source in (first, second, check):
            nb.cells.append(nbformat.v4.new_code_cell(source, execution_count=runs.get(source)))
        for gid, text in (("q2_tiers", answer), ("q10_miou_vs_accuracy", "YOUR ANSWER HERE")):
            nb.cells.append(nbformat.v4.new_markdown_cell(text, metadata={"nbgrader": {"grade_id": gid, "solution": True}}))
        nbformat.write(nb, path)

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        def run(code: str) -> str:
            out = []
            reply = client.execute_interactive(code, output_hook=lambda msg: out.append(msg["content"].get("text", "")),
                                               timeout=60)
            assert reply["content"]["status"] == "ok", reply["content"]
            return "".join(out)

        run(first), run(second)  # In [1], In [2]
        save({first: 1}, "YOUR ANSWER HERE")  # saved after In [1], before In [2]; the answer typed, not saved
        said = run(check)  # In [3]
        assert "older than the last cell you ran" in said and "Save the notebook (Ctrl+S)" in said, said
        assert "  Q2: still the placeholder\n  Q10: still the placeholder" in said and "q10_" not in said, said

        save({first: 1, second: 2, check: 3}, "YOUR ANSWER HERE")  # saved after the last run: no claim about it
        said = run(check)  # In [4]
        assert "as saved" in said and "older than" not in said and "Q2: still the placeholder" in said, said
        assert "it is not saved yet: save the notebook (Ctrl+S)" in said, said

        save({first: 1, second: 2, check: 4}, "A filled answer of more than fifteen words, " * 2)
        said = run(check + "\nprint(sorted(problems))")  # In [5]
        assert "Q2" not in said and "Q10: still the placeholder" in said and "['q10_miou_vs_accuracy']" in said, said
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
