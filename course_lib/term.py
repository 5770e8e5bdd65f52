"""What the course announces for this term: the graded data set and size, the mode, the packed data file students
download, and the mIoU tiers. The notebook's visible cells, its plots and the student bundle's README read it here.

Declared once, in the course's ``course.toml`` (``[grading]``; the grader reads the same table through
``autograder.term.GradedSetting``)::

    [grading]
    data = "voc:/srv/data/voc64.npz"
    image_size = 64
    mode = "FULL"
    tiers = { target = 0.15, good = 0.25, excellent = 0.35 }   # optional: the homework's defaults

Where a notebook finds it (``announced``), first match wins:

1. ``$SEGMENTATION_COURSE_ROOT/course.toml``: the instructor's runs of a source notebook (``autograder release``,
   ``nbgrader validate``), which set that variable;
2. the ``course.toml`` of the nearest folder above the working directory that also holds ``nbgrader_config.py``
   (the instructor's own JupyterLab in the course folder);
3. ``course_lib/_announced.py``, which the student bundle writes into the wheel it builds for the term;
4. the defaults: the synthetic set at 64×64, QUICK mode, tiers 0.15 / 0.25 / 0.35.

Nothing here is grader-only: no path of the grading machine beyond the packed file's name, and no secret.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from course_lib.data.sources import DataSource, image_size
from course_lib.train.recipes import MIOU_TIERS, RECIPES

COURSE_FILE = "course.toml"
COURSE_ROOT_VARIABLE = "SEGMENTATION_COURSE_ROOT"


@dataclass(frozen=True)
class Tiers:
    """The homework's three success tiers on the validation mIoU (each 5 points), lowest first.

    Attributes:
        target, good, excellent: thresholds; ``0 < target < good < excellent < 1``.
    """

    target: float = MIOU_TIERS["target"]
    good: float = MIOU_TIERS["good"]
    excellent: float = MIOU_TIERS["excellent"]

    def __post_init__(self) -> None:
        values = [getattr(self, name) for name in self.names()]
        if not all(isinstance(v, (int, float)) and 0 < v < 1 for v in values) or values != sorted(set(values)):
            raise ValueError(f"tiers must rise strictly between 0 and 1 (target < good < excellent), got "
                             f"{dict(zip(self.names(), values))}")

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(Tiers))

    @classmethod
    def parse(cls, value: object) -> "Tiers":
        """From ``course.toml``: ``{target = .., good = .., excellent = ..}`` or a list of three rising numbers.

        Raises:
            ValueError: another form, a missing or unknown name, or values that do not rise between 0 and 1.
        """
        if value is None:
            return cls()
        if isinstance(value, (list, tuple)):
            if len(value) != 3:
                raise ValueError(f"tiers is a list of three thresholds (target, good, excellent), got {value!r}")
            value = dict(zip(cls.names(), value))
        if not isinstance(value, dict) or set(value) != set(cls.names()):
            raise ValueError(f"tiers names {list(cls.names())} (each a threshold), got {value!r}")
        return cls(**{name: float(value[name]) for name in cls.names()})

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def reached(self, miou: float) -> list[str]:
        """The names of the tiers ``miou`` reaches."""
        return [name for name, threshold in self.as_dict().items() if miou >= threshold]

    def describe(self) -> str:
        """E.g. ``"0.15 (target), 0.25 (good), 0.35 (excellent)"``."""
        return ", ".join(f"{threshold:g} ({name})" for name, threshold in self.as_dict().items())

    def status(self, miou: float) -> str:
        """One line for a notebook: the mIoU, the highest tier it reaches and the next one to aim for."""
        reached = self.reached(miou)
        ahead = [n for n in self.names() if n not in reached]
        now = f"reaches the {reached[-1]} tier ({self.as_dict()[reached[-1]]:g})" if reached else "reaches no tier yet"
        nxt = f"; next: {ahead[0]} at {self.as_dict()[ahead[0]]:g}" if ahead else ""
        return f"validation mIoU {miou:.4f} {now}{nxt}"


@dataclass(frozen=True)
class Announcement:
    """What students are told about the term.

    Attributes:
        data: the data set's kind: ``"synthetic"``, ``"voc"`` or ``"camvid"``.
        image_size: (height, width) students train and are graded at.
        mode: the recipe students train with (``RECIPES``).
        tiers: the success tiers.
        data_file: the name of the packed file students download (``voc64.npz``), when the term grades one.
    """

    data: str = "synthetic"
    image_size: tuple[int, int] = (64, 64)
    mode: str = "QUICK"
    tiers: Tiers = field(default_factory=Tiers)
    data_file: str | None = None

    def data_spec(self, folder: str = "~/data") -> str:
        """What to write as ``DATA`` when the term's file sits in ``folder`` (``"voc:~/data/voc64.npz"``)."""
        if self.data == "synthetic":
            return "synthetic"
        return f"{self.data}:{folder.rstrip('/')}/{self.data_file}" if self.data_file else f"{self.data}:{folder}"

    def to_dict(self) -> dict:
        return {"data": self.data, "image_size": list(self.image_size), "mode": self.mode,
                "tiers": self.tiers.as_dict(), "data_file": self.data_file}

    @classmethod
    def from_dict(cls, values: dict) -> "Announcement":
        return cls(values["data"], tuple(values["image_size"]), values["mode"], Tiers.parse(values["tiers"]),
                   values.get("data_file"))


def parse_grading(table: dict) -> tuple[DataSource, Announcement]:
    """The ``[grading]`` table of ``course.toml``: the data source (with its location on the grading machine) and
    what students are told. The grader's ``GradedSetting.read`` parses the table through this function.

    Raises:
        ValueError: an unknown data set, mode or key form, a bad size, or tiers that do not rise.
    """
    data = DataSource.parse(table.get("data", "synthetic"))
    mode = str(table.get("mode", "QUICK"))
    if mode not in RECIPES:
        raise ValueError(f"mode {mode!r} is not one of {sorted(RECIPES)}")
    data_file = data.location.name if data.location is not None and data.location.suffix == ".npz" else None
    return data, Announcement(data.kind, image_size(table.get("image_size", 64)), mode,
                              Tiers.parse(table.get("tiers")), data_file)


def read_course_file(path: str | os.PathLike) -> tuple[DataSource, Announcement, dict]:
    """``parse_grading`` of a ``course.toml`` (the defaults when it has no ``[grading]``), and its whole table.

    Raises:
        ValueError: the file is not TOML or its ``[grading]`` is malformed (the message names the file).
    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
        source, announcement = parse_grading(table.get("grading", {}))
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: {err}. See the README's 'Running a term' for the format.") from err
    return source, announcement, table


def _course_file() -> Path | None:
    root = os.environ.get(COURSE_ROOT_VARIABLE)
    if root and (Path(root) / COURSE_FILE).is_file():
        return Path(root) / COURSE_FILE
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / COURSE_FILE).is_file() and (folder / "nbgrader_config.py").is_file():
            return folder / COURSE_FILE
    return None


def in_course_folder() -> bool:
    """True where the course's own ``course.toml`` is found (1 and 2 above): the instructor's and the test suite's
    runs of a notebook, never a student's bundle."""
    return _course_file() is not None


def announced() -> Announcement:
    """The term's announcement where this notebook runs (see the module's docstring for the order)."""
    path = _course_file()
    if path is not None:
        return read_course_file(path)[1]
    try:
        from course_lib._announced import ANNOUNCED  # written into the wheel by the student bundle
    except ImportError:
        return Announcement()
    return Announcement.from_dict(ANNOUNCED)


def tiers() -> Tiers:
    """The term's tiers: what the notebook's tier cells and ``viz.plot_history`` compare with."""
    return announced().tiers
