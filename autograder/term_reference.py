"""The reference of the declared term: the trained checkpoints an assignment's source validates with, made for the
term's data set, size, mode and classes, how long they take to make here, and how they cross the term's tiers.

- ``ensure_reference``: reuses the reference next to the source when it was made for this term; adopts one trained
  elsewhere (``release --reference DIR``, refused with the reason when it was made for another setting); otherwise
  trains it by executing a copy of the source notebook with the term's parameters injected after its parameters cell
  (``MODE``, ``DATA``, ``IMAGE_SIZE``; papermill's convention), on the GPU when there is one. Before training it
  says how long that will take on this machine (``course_lib.train.estimate``: a timed probe, an estimate).
- ``parametrised``: that notebook copy (also what ``release`` validates: the source as it runs in this term).
- ``calibration``: the reference's validation mIoU per epoch, with and without downsampling, the epoch each tier was
  first crossed, and warnings when the top tier falls before half the recipe or is never reached.
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.assignment import Assignment
from autograder.errors import GraderError
from autograder.term import GradedSetting
from course_lib.train.estimate import TrainingEstimate, duration, estimate_fit
from course_lib.train.recipes import get_recipe

INJECTED_TAG = "injected-parameters"  # papermill's tag for the cell it adds
NODOWN_SUFFIX = "_nodown"


class ReferenceError(GraderError):
    """The term's reference is missing, made for another setting, or could not be trained; the message says what
    to do."""


def results_name(checkpoint: str) -> str:
    return checkpoint.replace("_checkpoint.pt", "_results.json")


def reference_files(spec: Assignment) -> list[str]:
    """Every file of the reference: each checkpoint and its results file."""
    return [name for checkpoint in spec.reference_artifacts for name in (checkpoint, results_name(checkpoint))]


def _read_results(path: Path) -> dict:
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReferenceError(f"{path} cannot be read as a results file ({err})") from err
    if not isinstance(results, dict):
        raise ReferenceError(f"{path} is not a results file")
    return results


def _epochs(results: dict) -> int | None:
    records = (results.get("history") or {}).get("records") or []
    return int(records[-1]["epoch"]) if records else None


def reference_problem(folder: Path, spec: Assignment, setting: GradedSetting) -> str | None:
    """Why the reference in ``folder`` is not this term's (missing files, another data set, size, mode or class
    count), in words; ``None`` when it is."""
    missing = [name for name in reference_files(spec) if not (folder / name).is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    for checkpoint in spec.reference_artifacts:
        mismatch = setting.reference_mismatch(_read_results(folder / results_name(checkpoint)))
        if mismatch:
            return f"{checkpoint} was made for another setting: {mismatch}"
    return None


def parametrised(source: Path, target: Path, setting: GradedSetting, train_overrides: dict | None = None,
                 results_table: str | None = None, results_cell: str | None = None) -> Path:
    """Writes ``target``: the source notebook with this term's ``MODE``/``DATA``/``IMAGE_SIZE`` injected after its
    parameters cell (the first code cell that sets ``MODE``).

    Args:
        train_overrides: ``TrainConfig`` fields replaced in the notebook's recipe (a cell injected after the ``setup``
            cell), e.g. a test's shorter run; ``None`` keeps the recipe.
        results_table: a Markdown table that replaces the table lines of the cell ``results_cell`` (the model
            answer of the results table: the reference's own figures in this term).
    Raises:
        ReferenceError: the notebook has no parameters cell (or no ``setup`` cell when overrides are given).
    """
    nb = nbformat.read(source, as_version=4)
    cells = nb.cells
    index = next((i for i, c in enumerate(cells) if c.cell_type == "code"
                  and any(line.startswith("MODE =") for line in c.source.splitlines())), None)
    if index is None:
        raise ReferenceError(f"{source} has no parameters cell (a code cell setting MODE = ...)")
    size = setting.image_size[0] if setting.image_size[0] == setting.image_size[1] else tuple(setting.image_size)
    injected = nbformat.v4.new_code_cell(
        f"# Parameters injected by `autograder release`: this term is {setting.describe()} (course.toml)\n"
        f"MODE = {setting.mode!r}\nDATA = {str(setting.data)!r}\nIMAGE_SIZE = {size!r}\n",
        metadata={"tags": [INJECTED_TAG]})
    cells.insert(index + 1, injected)
    if train_overrides:
        setup = next((i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"), None)
        if setup is None:
            raise ReferenceError(f"{source} has no cell with grade id 'setup' after which to change the recipe")
        cells.insert(setup + 1, nbformat.v4.new_code_cell(
            "# Injected by `autograder release`: the recipe with these training settings replaced\n"
            "import dataclasses as _dataclasses\n"
            f"RECIPE = _dataclasses.replace(RECIPE, train=_dataclasses.replace(RECIPE.train, **{train_overrides!r}))\n",
            metadata={"tags": [INJECTED_TAG]}))
    if results_table is not None and results_cell is not None:
        cell = next((c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == results_cell), None)
        if cell is not None:
            lines = cell.source.splitlines()
            table = [i for i, line in enumerate(lines) if line.lstrip().startswith("|")]
            if table:
                lines[table[0]:table[-1] + 1] = results_table.splitlines()
                cell.source = "\n".join(lines)
    nbformat.write(nb, target)
    return target


def _reference_model(spec: Assignment):
    """The reference solution's model class of an assignment that trains one (``autograder.reference.<name>``)."""
    try:
        return importlib.import_module(f"autograder.reference.{spec.name}").SegmentationModel
    except (ImportError, AttributeError):
        return None


def _train_data(setting: GradedSetting):
    """The split the notebook trains on in this term (SBD's ``train_aug`` for VOC when it is there, as the notebook
    chooses)."""
    if setting.data.kind == "voc":
        try:
            return setting.data.load("train_aug", setting.image_size)
        except Exception:  # noqa: BLE001  (no SBD labels: the notebook falls back the same way)
            pass
    return setting.data.load("train", setting.image_size)


def estimate(spec: Assignment, setting: GradedSetting, train_overrides: dict | None = None) -> TrainingEstimate | None:
    """How long the notebook's training of both reference models will take here (``None`` when the assignment has
    no reference model to time)."""
    from dataclasses import replace

    model_class = _reference_model(spec)
    if model_class is None:
        return None
    recipe = get_recipe(setting.mode)
    cfg = replace(recipe.train, **(train_overrides or {}))
    train, val = _train_data(setting), setting.data.load("val", setting.image_size)
    total = None
    for downsample in (True, False):
        model = model_class(**dict(recipe.model_kwargs, num_classes=val.num_classes, downsample=downsample))
        one = estimate_fit(model, train, val, cfg)
        total = one if total is None else total + one
    return total


def check_reference(reference: Path, spec: Assignment, setting: GradedSetting) -> None:
    """Refuses a reference trained elsewhere unless every file is there and was made for this term.

    Raises:
        ReferenceError: a file is missing, or it was made for another data set, size, mode or class count (named).
    """
    problem = reference_problem(Path(reference).expanduser(), spec, setting)
    if problem:
        raise ReferenceError(f"--reference {reference} refused: {problem}. This term is {setting.describe()} with "
                             f"{setting.num_classes} classes (course.toml): pass the reference trained for it, or run "
                             "release without --reference to train it here.")


def adopt_reference(folder: Path, spec: Assignment, setting: GradedSetting, reference: Path, log=print) -> None:
    """Copies a reference trained elsewhere into the source folder, after ``check_reference``."""
    reference = Path(reference).expanduser()
    check_reference(reference, spec, setting)
    recipe_epochs = get_recipe(setting.mode).train.num_epochs
    for checkpoint in spec.reference_artifacts:
        epochs = _epochs(_read_results(reference / results_name(checkpoint)))
        if epochs is not None and epochs != recipe_epochs:
            log(f"note: {checkpoint} was trained for {epochs} epochs; the {setting.mode} recipe says {recipe_epochs}")
    for name in reference_files(spec):
        shutil.copy(reference / name, folder / name)
    log(f"{spec.name}: reference from {reference} adopted (made for {setting.describe()})")


def ensure_reference(course_root: Path, spec: Assignment, setting: GradedSetting, execute, log=print,
                     reference: Path | None = None, train_overrides: dict | None = None,
                     allow_cpu: bool = False) -> None:
    """Makes sure ``source/<assignment>/`` holds the reference of this term (see the module's docstring).

    Args:
        execute: ``(notebook path, timeout=seconds per cell) -> list of error lines``: runs every cell of a notebook
            in its folder with the course's environment, going on after a cell that fails.
        train_overrides: ``TrainConfig`` fields replaced in the notebook's recipe while training (tests).
        allow_cpu: train a recipe meant for a GPU on a machine without one (otherwise refused, with the estimate).
    Raises:
        ReferenceError: a ``reference`` made for another setting, a GPU recipe on a CPU without ``allow_cpu``, or a
            training run that failed.
    """
    folder = course_root / "source" / spec.name
    if not spec.reference_artifacts:
        return
    if reference is not None:
        adopt_reference(folder, spec, setting, reference, log)
        return
    problem = reference_problem(folder, spec, setting)
    expected_epochs = (train_overrides or {}).get("num_epochs", get_recipe(setting.mode).train.num_epochs)
    if problem is None:
        epochs = {_epochs(_read_results(folder / results_name(c))) for c in spec.reference_artifacts}
        if epochs == {expected_epochs}:
            log(f"{spec.name}: the reference next to the source was made for this term ({setting.describe()}): "
                "reused")
            return
        problem = f"it was trained for {sorted(epochs, key=str)} epochs, the recipe now says {expected_epochs}"
    log(f"{spec.name}: training the reference for this term ({setting.describe()}), because {problem}")
    recipe = get_recipe(setting.mode)
    guess = estimate(spec, setting, train_overrides)
    if guess is not None:
        log(f"{spec.name}: both reference models will take {guess.describe()}")
        if recipe.device == "cuda" and not guess.device.startswith("cuda") and not allow_cpu:
            raise ReferenceError(f"the {setting.mode} recipe is meant for a GPU and this machine has none: training "
                                 f"the reference here would take {guess.describe()}. Train it on a GPU machine "
                                 "(release there, or the notebook in this term's setting) and pass its files with "
                                 "--reference DIR, or pass --allow-cpu to train here anyway.")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="term-reference-") as tmp:
        work = Path(tmp) / spec.name
        shutil.copytree(folder, work, ignore=shutil.ignore_patterns(*reference_files(spec), ".ipynb_checkpoints"))
        notebook = work / spec.notebook
        parametrised(folder / spec.notebook, notebook, setting, train_overrides)
        try:  # every cell runs (a visible check that fails does not stop the training cells after it)
            errors = execute(notebook, timeout=_cell_timeout(guess))
        except Exception as err:  # nbconvert's timeout, a dead kernel
            raise ReferenceError(f"{spec.name}: training the reference in this term's setting failed: "
                                 f"{str(err).strip()[-1500:]}") from err
        missing = [name for name in reference_files(spec) if not (work / name).is_file()]
        if missing:
            raise ReferenceError(f"{spec.name}: training the reference in this term's setting did not write "
                                 f"{', '.join(missing)}; the notebook's errors: " + "; ".join(errors or ["none"]))
        for name in reference_files(spec):
            shutil.copy(work / name, folder / name)
    took = time.perf_counter() - start
    said = f" (estimated {duration(guess.seconds)})" if guess is not None else ""
    log(f"{spec.name}: reference trained in {duration(took)}{said}: {', '.join(spec.reference_artifacts)}")


def _cell_timeout(guess: TrainingEstimate | None) -> int:
    """nbconvert's per-cell limit while training: four times the estimate (a safety cap, never a budget)."""
    return max(1800, int(4 * guess.seconds)) if guess is not None else 6 * 3600


@dataclass
class Calibration:
    """How the term's reference crosses the term's tiers.

    Attributes:
        epochs: the recipe's epochs (the reference's own).
        with_down, without_down: validation mIoU per evaluated epoch, ``{epoch: miou}``.
        crossed, crossed_without: the first epoch at or above each tier (``None``: never), by tier name.
        warnings: what the instructor should look at.
    """

    setting: GradedSetting
    epochs: int
    with_down: dict[int, float]
    without_down: dict[int, float]
    crossed: dict[str, int | None]
    crossed_without: dict[str, int | None]
    warnings: list[str]

    def table(self) -> str:
        tiers = self.setting.tiers
        lines = [f"calibration of this term ({self.setting.describe()}, tiers {tiers.describe()}): the reference's "
                 "validation mIoU per epoch", "epoch  with downsampling  without downsampling"]
        for epoch in sorted(set(self.with_down) | set(self.without_down)):
            a, b = self.with_down.get(epoch), self.without_down.get(epoch)
            lines.append(f"{epoch:5d}  {'' if a is None else f'{a:.4f}':>17}  {'' if b is None else f'{b:.4f}':>20}")
        lines.append("first epoch at or above each tier (with / without downsampling):")
        for name, threshold in tiers.as_dict().items():
            first = self.crossed[name]
            other = self.crossed_without[name]
            lines.append(f"  {name} {threshold:g}: {first if first is not None else 'never'} / "
                         f"{other if other is not None else 'never'}")
        return "\n".join(lines + [f"WARNING: {w}" for w in self.warnings])


def _curve(results: dict) -> dict[int, float]:
    records = (results.get("history") or {}).get("records") or []
    return {int(r["epoch"]): float(r["val_miou"]) for r in records}


def calibration(folder: Path, spec: Assignment, setting: GradedSetting) -> Calibration | None:
    """The calibration of the reference in ``folder`` (``None`` when it has no curves to read)."""
    main = [c for c in spec.reference_artifacts if NODOWN_SUFFIX not in c]
    nodown = [c for c in spec.reference_artifacts if NODOWN_SUFFIX in c]
    if not main or not (folder / results_name(main[0])).is_file():
        return None
    with_down = _curve(_read_results(folder / results_name(main[0])))
    without = _curve(_read_results(folder / results_name(nodown[0]))) if nodown and (
        folder / results_name(nodown[0])).is_file() else {}
    if not with_down:
        return None
    epochs = max(with_down)

    def first(curve: dict[int, float], threshold: float) -> int | None:
        return next((e for e in sorted(curve) if curve[e] >= threshold), None)

    tiers = setting.tiers.as_dict()
    crossed = {name: first(with_down, t) for name, t in tiers.items()}
    crossed_without = {name: first(without, t) for name, t in tiers.items()}
    top, top_value = list(tiers.items())[-1]
    warnings = []
    if crossed[top] is None:
        warnings.append(f"the reference never reaches the top tier ({top} {top_value:g}; it ends at "
                        f"{with_down[epochs]:.4f}): few students will. Lower the tiers in course.toml "
                        "([grading] tiers) or lengthen the recipe.")
    elif crossed[top] <= epochs / 2:
        warnings.append(f"the reference crosses the top tier ({top} {top_value:g}) at epoch {crossed[top]} of "
                        f"{epochs}, before half its recipe: the tiers hardly tell students apart on this term's "
                        "data. Consider higher tiers in course.toml ([grading] tiers).")
    return Calibration(setting, epochs, with_down, without, crossed, crossed_without, warnings)
