"""nbgrader configuration of the course. The repository root is the course directory:
source/ and release/ are committed; submitted/, autograded/, feedback/ and gradebook.db are made by the TA pipeline.

Override the gradebook with SEGMENTATION_GRADEBOOK_URL (any SQLAlchemy URL, e.g.
postgresql://ta@dbhost/segmentation when several TAs share one gradebook); the grader reads its environment in
``autograder/config.py``.
"""

from pathlib import Path

from autograder.config import environment

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

ROOT = Path(__file__).resolve().parent
ENV = environment()

c.CourseDirectory.course_id = "segmentation"
c.CourseDirectory.root = str(ENV.course_root or ROOT)
c.CourseDirectory.db_url = ENV.gradebook_url or f"sqlite:///{Path(c.CourseDirectory.root) / 'gradebook.db'}"
# Notebooks travel through the LMS, not nbgrader's exchange. The exchange still needs a folder it can use, or
# formgrader shows "The exchange directory ... does not exist" on every page; `python -m autograder release` puts a
# copy of each release there (nbgrader release_assignment), which formgrader shows as "released" rather than
# "draft". It lives in the course (git-ignored); nbgrader makes it world-writable, as its exchange requires.
c.Exchange.root = str(Path(c.CourseDirectory.root) / "exchange")

# Never copy trained weights, results or caches from source/ into release/.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.pt", "*_results.json", ".cache",
]
c.CourseDirectory.max_file_size = 100_000  # kB; a checkpoint of the allowed size is far below this

# Per-cell limit of the notebooks nbgrader executes: `nbgrader validate` (the instructor's release, a student's
# Validate button). Grading executes no notebook (the judge runs the student's code cells in its sandbox, and
# autograde only renders: autograder/rendering.py). Validation never trains (the notebook loads the checkpoint).
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# Kernels started for those executions get CurveZMQ keys from their manager (jupyter_client >= 8.10), so the
# kernel's ports on 127.0.0.1 are encrypted and ipykernel has no "running over TCP without encryption" to warn of.
c.KernelManager.transport_encryption = "auto"

c.ClearSolutions.code_stub = {"python": (
    "# YOUR CODE HERE\n"
    'raise NotImplementedError("not written yet: replace this line with your code; the text above this cell and '
    'the docstring say what it must do")'
)}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# Late submissions: the [late] policy of course.toml (grace, penalty per day or hour with a floor, late days,
# extensions from extensions.csv), through nbgrader's own hook, so that nbgrader's totals and formgrader carry it.
c.AssignLatePenalties.plugin_class = "autograder.late.CoursePenalty"
# `nbgrader export` quoted and formula-safe (nbgrader's own CSV plugin joins names with commas unquoted).
c.ExportApp.plugin_class = "autograder.nbgrader_export.SafeCsvExport"
# Student text never runs as script in the HTML that TAs and students open (feedback pages, formgrader's submission
# view): every HTMLExporter cleans Markdown cells and outputs with bleach's allow-list (autograder/sanitize.py).
c.HTMLExporter.preprocessors = ["autograder.sanitize.SanitizeStudentHTML"]
