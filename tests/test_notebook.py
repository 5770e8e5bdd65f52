"""Reading a submitted notebook defensively (``autograder.notebook``): limits hold before nbformat does any work."""

from __future__ import annotations

import pytest


def test_the_cell_limit_counts_every_format_of_notebook():
    """Round 6 put 250,054 cells in an nbformat 3 notebook's worksheet, past a count of ``cells`` alone (grading took
    301 s); both formats are counted before nbformat converts anything, and a notebook within the limit reads."""
    import json

    from autograder.notebook import MAX_NOTEBOOK_CELLS, SubmissionError, parse_notebook

    def v3(cells: int) -> bytes:
        return json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"metadata": {}, "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ""} for _ in range(cells)]}]}).encode()

    def v4(cells: int) -> bytes:
        return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "markdown", "id": f"c{i}", "metadata": {}, "source": ""} for i in range(cells)]}).encode()

    for make in (v3, v4):
        assert len(parse_notebook(make(10), "hw.ipynb").cells) == 10
        with pytest.raises(SubmissionError, match=f"over the {MAX_NOTEBOOK_CELLS:,} cell limit"):
            parse_notebook(make(MAX_NOTEBOOK_CELLS + 1), "hw.ipynb")
