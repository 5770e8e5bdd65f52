"""Where the grader lives, and the one reader of the environment's settings.

Every ``SEGMENTATION_*`` variable the grader honours is named here and read here (``environment()``), nowhere else.
The term's graded data and secret are the course's (``autograder.term``); the test suite's own switches
(``SEGMENTATION_CACHE_DIR``, ``SEGMENTATION_NO_CACHE``) belong to ``tests/reference_cache.py``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COURSE_ROOT = "SEGMENTATION_COURSE_ROOT"  # the course directory (set for every nbgrader run of the pipeline)
GRADEBOOK_URL = "SEGMENTATION_GRADEBOOK_URL"  # any SQLAlchemy URL; default: <course>/gradebook.db
SCRATCH = "SEGMENTATION_SCRATCH"  # where sandboxes make their scratch folders
TERM_SECRET = "SEGMENTATION_TERM_SECRET"  # overrides <course>/grading/term_secret.txt


@dataclass(frozen=True)
class Environment:
    """The grader's settings from the environment.

    Attributes:
        course_root: ``$SEGMENTATION_COURSE_ROOT`` (None when unset).
        gradebook_url: ``$SEGMENTATION_GRADEBOOK_URL`` (None when unset: the course's ``gradebook.db``).
        scratch: ``$SEGMENTATION_SCRATCH``, else ``<tmp>/segmentation-grading``.
        term_secret: ``$SEGMENTATION_TERM_SECRET`` (None when unset or empty: the course's secret file).
        library_path: the folders of ``$LD_LIBRARY_PATH`` (a sandbox that runs on CUDA binds those it needs).
    """

    course_root: Path | None
    gradebook_url: str | None
    scratch: Path
    term_secret: str | None
    library_path: tuple[Path, ...] = ()

    @classmethod
    def read(cls, environ: Mapping[str, str] = os.environ) -> "Environment":
        return cls(course_root=Path(environ[COURSE_ROOT]) if environ.get(COURSE_ROOT) else None,
                   gradebook_url=environ.get(GRADEBOOK_URL) or None,
                   scratch=Path(environ.get(SCRATCH) or Path(tempfile.gettempdir()) / "segmentation-grading"),
                   term_secret=environ.get(TERM_SECRET) or None,
                   library_path=tuple(Path(p) for p in environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p))


def environment() -> Environment:
    """The settings as the environment holds them now."""
    return Environment.read()


@contextlib.contextmanager
def course_root_for_kernels(course_root: Path) -> Iterator[None]:
    """``$SEGMENTATION_COURSE_ROOT`` set to ``course_root`` while kernels started here run a source notebook, whose
    hidden tests then judge with that course's setting and secret wherever the notebook was copied to."""
    previous = os.environ.get(COURSE_ROOT)
    os.environ[COURSE_ROOT] = str(course_root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(COURSE_ROOT, None)
        else:
            os.environ[COURSE_ROOT] = previous
