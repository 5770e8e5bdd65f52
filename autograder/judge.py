"""The judge: grades one submission with the hidden checks, student code confined to a sandbox.

1. The submitted files the judge needs are read once, by the grader, as regular files only (``read_submitted``:
   opened without following links, checked with ``fstat``; a link, device or FIFO is refused with a row that says
   so). Nothing is opened by path after that: the sandbox gets sealed in-memory copies.
2. The notebook is read as data (never executed here); a notebook that is not valid JSON, or not this
   assignment's, or has lost its graded cells, fails every check with that reason. Its graded code cells are read
   as text for embedded data and code built at run time (``autograder.inspection``): a suspicion, never points.
3. The checkpoint is read here too (``weights_only``, after its zip is checked: ``load_tensors``): the parameter
   count, finite weights and what the checkpoint stores besides parameters are the grader's own figures.
4. The student's class cells, the probes, the assignment's per-run challenge (``Assignment.make_inputs``: drawn
   afresh, so no answer can be prepared), the images (never the masks), the checkpoint and a copy of it with
   random weights go into the sandbox (``autograder.sandbox``); ``sandbox_runner.py`` runs there under ``Limits``
   and sends its observations back through a pipe. The predictions run apart (``_run_probes``): of that run, which
   holds the held-out images, nothing the student's code says reaches the student, only tensors.
5. Observations are read with ``weights_only=True`` and are only claims: the checks verify them against the
   grader's own computation; the mIoU is computed here, with ``course_lib``'s confusion matrix, on the term's
   validation split and on held-out data drawn from the term's secret (``autograder.heldout``). The held-out figure
   alone decides the tiers. Every defence that fires writes its reason into ``Verdict.flags``.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import secrets
import stat
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from autograder import config
from autograder.assignment import Assignment, CheckContext
from autograder.checks import get_assignment
from autograder.checks.common import BATCHNORM_STATISTICS, PartialCredit, PartScore
from autograder.heldout import HELDOUT_GAP, GradingData, grading_data
from autograder.inspection import inspect_cells
from autograder.notebook import (
    MAX_NOTEBOOK_BYTES, MAX_NOTEBOOK_CELLS, SubmissionError, answer_cells, duplicated_ids, first_cells_by_id,
    parse_notebook, require_assignment,
)
from autograder.sandbox import RLIM_INFINITY, Isolation, Limits, RunResult, minimal_env, run_sandboxed
from course_lib.answers import parse_results_table
from course_lib.data import SegmentationTensors
from course_lib.metrics import ConfusionMatrix, mean_iou

RUNNER = Path(__file__).with_name("sandbox_runner.py")
STARTED = b"SANDBOX-RUNNER-STARTED\n"  # what sandbox_runner.py writes before any student code runs
MAX_CHECKPOINT_BYTES = 200 * 1024**2
MAX_RESULTS_BYTES = 1024**2
WEIGHT_PROBE_IMAGES = 32  # images of each split predicted again with random weights (``_weight_dependence``)
MAX_MESSAGE_CHARS = 4000  # a check's message, which may quote what the student's code sent


@dataclass
class CheckResult:
    """One check's verdict: ``fraction`` of the cell's points (1 passed, 0 failed, between: some parts passed) and,
    for a check made of weighted parts, each part's result."""

    grade_id: str
    message: str
    fraction: float
    parts: tuple[PartScore, ...] = ()
    passed: bool = field(init=False)  # the whole check passed: fraction 1

    def __post_init__(self) -> None:
        self.passed = self.fraction >= 1.0


@dataclass
class Verdict:
    """The judge's report on one submission."""

    assignment: str
    status: str = "graded"  # graded | invalid
    problems: list[str] = field(default_factory=list)
    checks: dict[str, CheckResult] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # suspicions a defence raised: the TA must see each one
    miou: dict | None = None
    sandbox: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        """The verdict ``to_dict`` wrote (what a Dask worker returns, ``autograder.cluster``)."""
        checks = {gid: CheckResult(c["grade_id"], c["message"], c["fraction"], tuple(PartScore(**p) for p in c["parts"]))
                  for gid, c in data["checks"].items()}
        return cls(data["assignment"], data["status"], list(data["problems"]), checks, list(data.get("flags", [])),
                   data["miou"], dict(data["sandbox"]), data["seconds"])

    def flag(self, reason: str) -> None:
        if reason not in self.flags:
            self.flags.append(reason)


# --- reading what the student handed in --------------------------------------------------------------------------

@dataclass
class Submitted:
    """The judged files of one submission as the grader read them.

    Attributes:
        files: name → content of each regular file read.
        refused: name → why it was not read (a link, a device or FIFO, too big); absent files are in neither.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    oversized: dict[str, int] = field(default_factory=dict)  # name → size of each file refused for its size


def _limit_of(name: str, spec: Assignment) -> int:
    if name == spec.notebook:
        return MAX_NOTEBOOK_BYTES
    return MAX_CHECKPOINT_BYTES if name == spec.checkpoint else MAX_RESULTS_BYTES


def read_submitted(folder: Path, spec: Assignment) -> Submitted:
    """Reads ``judged_files(spec)`` from ``folder`` (``read_files``, each with its own size limit)."""
    return read_files(folder, {name: _limit_of(name, spec) for name in judged_files(spec)})


def read_files(folder: Path, limits: dict[str, int]) -> Submitted:
    """Reads the files named in ``limits`` (name → most bytes) from ``folder``: regular files only, each opened
    without following a link (``O_NOFOLLOW``, the folder too) and checked with ``fstat`` before a byte is read."""
    found = Submitted()
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return found
    except OSError as err:
        found.refused = {name: f"the submission folder {Path(folder).name} is not a plain folder ({err.strerror})"
                         for name in limits}
        return found
    try:
        for name, limit in limits.items():
            why = _read_one(folder_fd, name, limit, found)
            if why:
                found.refused[name] = why
    finally:
        os.close(folder_fd)
    return found


def too_big(name: str, limit: int) -> str:
    return f"{name} is over {limit // 1024**2} MB; not loaded"


def _read_one(folder_fd: int, name: str, limit: int, found: Submitted) -> str | None:
    """Opens ``name`` as a path handle without following a link, checks it is a regular file, and only then opens
    it for reading (a device or FIFO is never opened)."""
    try:
        handle = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"{name} could not be opened ({err.strerror})"
    try:
        info = os.fstat(handle)
        if stat.S_ISLNK(info.st_mode):
            return f"{name} is a symbolic link; only regular files are graded (upload the file itself)"
        if not stat.S_ISREG(info.st_mode):
            return f"{name} is not a regular file (a folder, device, FIFO or socket); only regular files are graded"
        if info.st_size > limit:
            found.oversized[name] = info.st_size
            return too_big(name, limit)
        fd = os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(handle)
    try:
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                found.oversized[name] = size
                return too_big(name, limit)
        found.files[name] = b"".join(chunks)
        return None
    finally:
        os.close(fd)


def irregular_files(folder: Path) -> list[Path]:
    """Entries of a submission that are not regular files or folders (links, devices, FIFOs), relative to ``folder``:
    never read, never copied into ``autograded/``."""
    odd = []
    for root, dirs, files in os.walk(folder):  # os.walk does not follow links to folders
        for name in dirs + files:
            path = Path(root) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                odd.append(path.relative_to(folder))
    return sorted(odd)


def load_tensors(data: bytes):
    """A ``torch.save`` file from untrusted bytes: its zip must hold stored (uncompressed) entries no larger in all
    than the file itself (no decompression bomb), then ``torch.load(weights_only=True)`` on the CPU.

    Raises:
        ValueError: the bytes are not such a file; the message says why.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as err:
        raise ValueError("not a torch.save file of PyTorch 1.6 or later (save it with torch.save)") from err
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries) or sum(e.file_size for e in entries) > len(data):
        raise ValueError("a compressed archive, not a torch.save file")
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}") from err
    if _tensor_bytes(loaded) > 2 * len(data) + (1 << 20):
        raise ValueError("its tensors claim more memory than the file holds (overlapping views)")
    return loaded


def _tensor_bytes(obj, depth: int = 0) -> int:
    """The bytes the tensors in ``obj`` would take once materialised; a view larger than its storage (stride 0, say)
    counts as infinite, so that no check of the grader ever allocates what the file does not hold."""
    if isinstance(obj, torch.Tensor):
        size = obj.numel() * obj.element_size()
        return size if size <= obj.untyped_storage().nbytes() else 1 << 62
    if depth > 32:
        return 1 << 62
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v, depth + 1) for v in obj)
    return 0


# --- the grader's own view of a checkpoint --------------------------------------------------------------------------

@dataclass
class CheckpointFacts:
    """What the grader computes itself from a checkpoint's tensors (never from the sandbox).

    Attributes:
        state: the state dict (name → tensor).
        model_kwargs: the keyword arguments saved with it.
        stored: values in every tensor except BatchNorm statistics (``BATCHNORM_STATISTICS``): parameters and any
            other stored buffer.
        finite: every floating-point tensor is finite.
    """

    state: dict
    model_kwargs: dict
    stored: int
    finite: bool

    @classmethod
    def read(cls, data: bytes) -> "CheckpointFacts":
        payload = load_tensors(data)
        state = payload["state_dict"] if isinstance(payload, dict) and "state_dict" in payload else payload
        kwargs = payload.get("model_kwargs", {}) if isinstance(payload, dict) else {}
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in state.items()):
            raise ValueError("it holds no state dict (name → tensor)")
        if not isinstance(kwargs, dict):
            kwargs = {}
        stored = sum(v.numel() for k, v in state.items() if k.rsplit(".", 1)[-1] not in BATCHNORM_STATISTICS)
        finite = all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
        return cls(state, kwargs, stored, finite)

    def random_copy(self, seed: int) -> dict:
        """The same names, shapes and dtypes with random values drawn here (BatchNorm variances positive)."""
        g = torch.Generator().manual_seed(seed)
        copy = {}
        for name, value in self.state.items():
            if not value.is_floating_point():
                copy[name] = value.clone()
                continue
            draw = torch.randn(value.shape, generator=g, dtype=torch.float64).to(value.dtype)
            copy[name] = draw.abs() + 0.5 if name.endswith("running_var") else draw * 0.5
        return {"state_dict": copy, "model_kwargs": self.model_kwargs}


# --- scoring predictions -------------------------------------------------------------------------------------------

def _miou(preds: torch.Tensor, data: SegmentationTensors) -> float:
    cm = ConfusionMatrix(data.num_classes)
    cm.update(preds.long().clamp(max=data.num_classes - 1), data.masks.long())
    return mean_iou(cm.matrix)


def _score_predictions(obs: dict, data: GradingData, facts: CheckpointFacts | None,
                       verdict: Verdict, compare: list[int]) -> tuple[dict | None, str | None]:
    """The mIoU on the public split and on the held-out data; the held-out figure alone decides the tiers
    (``effective``), so no mixture of honest answers and lookups can move a tier. Raises the suspicions a lookup
    leaves: far better on the public split than on the held-out data, predictions that ignore the weights."""
    pred = obs.get("predictions") or {}
    if facts is not None and not facts.finite:
        return None, "the model's weights contain NaN or Inf"
    if "error" in pred or "preds" not in pred:
        return None, f"the submitted checkpoint could not be evaluated: {pred.get('error', 'no predictions')}"
    preds = pred["preds"]
    n_public = len(data.public)
    expected = (n_public + len(data.heldout), *data.public.image_size)
    if not isinstance(preds, torch.Tensor) or tuple(preds.shape) != expected or preds.dtype != torch.uint8:
        shape = tuple(preds.shape) if isinstance(preds, torch.Tensor) else None
        return None, (f"the model's predictions have shape {shape}: expected logits (N, {data.public.num_classes}, "
                      f"{data.public.image_size[0]}, {data.public.image_size[1]})")
    if not pred.get("finite", False):
        return None, "the model's logits contain NaN or Inf"
    public = _miou(preds[:n_public], data.public)
    heldout = _miou(preds[n_public:], data.heldout)
    if public - heldout > HELDOUT_GAP:
        verdict.flag(f"the checkpoint scores mIoU {public:.4f} on the public validation split but {heldout:.4f} on "
                     f"{data.heldout_kind}: it may answer known images by lookup (the held-out figure decides "
                     "the tiers)")
    _weight_dependence(pred, preds, compare, verdict)
    return {"public": public, "heldout": heldout, "effective": heldout, "heldout_kind": data.heldout_kind}, None


def _weight_dependence(pred: dict, preds: torch.Tensor, compare: list[int], verdict: Verdict) -> None:
    """A model predicts again with random weights in the same class on ``compare`` (images the grader chose): an
    image whose (non-constant) prediction stays the same did not come from the weights."""
    other = pred.get("random_weights_preds")
    if not isinstance(other, torch.Tensor) or tuple(other.shape) != (len(compare), *preds.shape[1:]):
        if compare:
            why = str(pred.get("random_weights_error") or "the probe was skipped or tampered with")[:300]
            verdict.flag(f"the model's predictions with random weights did not come back ({why})")
        return
    mine = preds[compare]
    same = [(a == b).all() and a.unique().numel() > 1 for a, b in zip(mine, other)]
    unchanged = int(sum(bool(s) for s in same))
    if unchanged >= max(2, len(compare) // 10):
        verdict.flag(f"the model's predictions do not depend on its weights: with random weights in the same class, "
                     f"{unchanged} of {len(compare)} images got exactly the same prediction (answers stored in the "
                     "code, or a model that does not use what it learned)")


def _read_results_json(data: bytes | None) -> dict:
    """The results file as a dict (``{}`` when missing, too big or not a JSON object)."""
    if data is None or len(data) > MAX_RESULTS_BYTES:
        return {}
    try:
        results = json.loads(data.decode())
        return results if isinstance(results, dict) else {}
    except (ValueError, UnicodeDecodeError):
        return {}


def default_course_root(folder: Path) -> Path:
    """The course a judge run on ``folder`` belongs to, when none is given: ``$SEGMENTATION_COURSE_ROOT`` (set for
    every nbgrader run of the pipeline), else the nearest folder above ``folder`` that holds ``nbgrader_config.py``
    (a source notebook's ``<course>/source/<assignment>``, a student's ``<course>/submitted/<student>/<assignment>``),
    else this repository, itself a course."""
    env = config.environment()
    if env.course_root is not None:
        return env.course_root
    return next((p for p in Path(folder).resolve().parents if (p / "nbgrader_config.py").is_file()), config.REPO)


def submission_limits(limits: Limits = Limits()) -> list[tuple[str, str, str]]:
    """Every limit a submission meets: (what, value, where it is declared). The README's table of limits is this
    list, rendered by ``limits_markdown`` (``tests/test_grading_jail.py`` keeps the two equal)."""
    from autograder import inspection, sandbox_runner
    from autograder.checks.segmentation_hw import MAX_PARAMETERS
    from autograder.rendering import MAX_COPIED_FILE_BYTES, MAX_OUTPUT_CHARS

    def size(n: int) -> str:
        return f"{n / 1024**3:g} GB" if n >= 1024**3 else f"{n / 1024**2:g} MB" if n >= 1024**2 else f"{n:,} bytes"

    quarter = limits.disk_bytes // 4
    return [
        ("wall clock of one sandboxed run (`grade --code-timeout`)", f"{limits.wall_seconds:g} s",
         "`sandbox.Limits.wall_seconds`"),
        ("CPU time (`RLIMIT_CPU`)", f"{limits.cpu_seconds} s", "`sandbox.Limits.cpu_seconds`"),
        ("address space (`RLIMIT_AS`; none when predictions run on CUDA)", size(limits.memory_bytes),
         "`sandbox.Limits.memory_bytes`"),
        ("one file written (`RLIMIT_FSIZE`)", size(limits.file_bytes), "`sandbox.Limits.file_bytes`"),
        ("processes and threads (`RLIMIT_NPROC`: those the worker's uid, as root, or the user already runs plus these)",
         f"{limits.processes}", "`sandbox.Limits.processes`"),
        ("open files (`RLIMIT_NOFILE`)", f"{limits.open_files}", "`sandbox.Limits.open_files`"),
        ("in-memory disk: `/sandbox`, `/tmp`, `/dev/shm`", f"{size(2 * quarter)}, {size(quarter)}, {size(quarter)}",
         "`sandbox.Limits.disk_bytes`"),
        ("observations sent back", size(limits.output_bytes), "`sandbox.Limits.output_bytes`"),
        ("stderr kept for messages", size(limits.stderr_bytes), "`sandbox.Limits.stderr_bytes`"),
        ("printed output kept inside the sandbox", f"{sandbox_runner.CappedWriter().limit:,} characters",
         "`sandbox_runner.CappedWriter`"),
        ("notebook read", size(MAX_NOTEBOOK_BYTES), "`notebook.MAX_NOTEBOOK_BYTES`"),
        ("cells in a notebook", f"{MAX_NOTEBOOK_CELLS:,}", "`notebook.MAX_NOTEBOOK_CELLS`"),
        ("checkpoint loaded", size(MAX_CHECKPOINT_BYTES), "`judge.MAX_CHECKPOINT_BYTES`"),
        ("results file read", size(MAX_RESULTS_BYTES), "`judge.MAX_RESULTS_BYTES`"),
        ("other submitted files copied into `autograded/`", size(MAX_COPIED_FILE_BYTES),
         "`rendering.MAX_COPIED_FILE_BYTES`"),
        ("a check's message", f"{MAX_MESSAGE_CHARS:,} characters", "`judge.MAX_MESSAGE_CHARS`"),
        ("a text output shown to TAs and students", f"{MAX_OUTPUT_CHARS:,} characters", "`rendering.MAX_OUTPUT_CHARS`"),
        ("the homework model's parameters", f"{MAX_PARAMETERS:,}", "`checks.segmentation_hw.MAX_PARAMETERS`"),
        ("public minus held-out mIoU before the TA is told", f"{HELDOUT_GAP:g}", "`heldout.HELDOUT_GAP`"),
        ("images of each split predicted again with random weights", f"{WEIGHT_PROBE_IMAGES}",
         "`judge.WEIGHT_PROBE_IMAGES`"),
        ("one literal, comment or shell line of a graded cell before the TA is told",
         f"{inspection.MAX_LITERAL_CHARS:,} bytes (UTF-8)", "`inspection.MAX_LITERAL_CHARS`"),
        ("numbers in one list, tuple, set or dict display of a graded cell before the TA is told",
         f"{inspection.MAX_DISPLAY_NUMBERS}", "`inspection.MAX_DISPLAY_NUMBERS`"),
        ("a graded cell's literals and comments together before the TA is told",
         f"{inspection.MAX_CELL_PAYLOAD_CHARS:,} bytes (UTF-8)", "`inspection.MAX_CELL_PAYLOAD_CHARS`"),
    ]


def limits_markdown(limits: Limits = Limits()) -> str:
    """``submission_limits`` as the README's Markdown table."""
    rows = ["| limit | value | declared in |", "|---|---|---|"]
    return "\n".join(rows + [f"| {what} | {value} | {where} |" for what, value, where in submission_limits(limits)])


def judged_files(spec: Assignment) -> list[str]:
    """The submission's files the judge reads: the notebook and, for an assignment graded on data, the results file
    and the checkpoint."""
    return [spec.notebook, *((spec.results_file, spec.checkpoint) if spec.graded_on_data else ())]


def judge_submission(folder: Path, assignment: str | Assignment = "segmentation_hw", data: GradingData | None = None,
                     limits: Limits = Limits(), isolation: Isolation | None = None, run=run_sandboxed) -> Verdict:
    """Runs every hidden check of ``assignment`` (a name or a declaration) on the submission in ``folder``. ``data``
    defaults to the term's (``autograder.heldout.grading_data``) of the default course of ``folder``
    (``default_course_root``). ``run`` starts the sandbox's runner (``sandbox.run_sandboxed``; the tests of what the
    checks decide pass one that runs it in their own process, ``tests/inprocess.py``).

    Raises:
        SandboxUnavailable: no sandbox on this machine and ``isolation.unsafe`` is off.
    """
    spec = assignment if isinstance(assignment, Assignment) else get_assignment(assignment)
    if spec.graded_on_data and data is None:
        data = grading_data(default_course_root(folder))
    return judge_files(read_submitted(Path(folder), spec), spec, data, limits, isolation, run)


def judge_files(submitted: Submitted, assignment: str | Assignment, data: GradingData | None = None,
                limits: Limits = Limits(), isolation: Isolation | None = None, run=run_sandboxed) -> Verdict:
    """``judge_submission`` on files already read (what a Dask worker receives); ``data`` is required for an
    assignment graded on data."""
    start = time.perf_counter()
    spec = assignment if isinstance(assignment, Assignment) else get_assignment(assignment)
    verdict = Verdict(spec.name)
    verdict.problems += [submitted.refused[name] for name in judged_files(spec) if name in submitted.refused]
    try:
        if spec.notebook not in submitted.files:
            raise SubmissionError(submitted.refused.get(spec.notebook)
                                  or f"notebook {spec.notebook} is missing from the submission")
        nb = parse_notebook(submitted.files[spec.notebook], spec.notebook)
        require_assignment(nb, set(spec.code_cells), spec.name)
    except SubmissionError as err:
        verdict.status = "invalid"
        verdict.problems = [str(err)]
        verdict.checks = {gid: CheckResult(gid, str(err), 0.0) for gid in spec.checks}
        verdict.seconds = time.perf_counter() - start
        return verdict
    if duplicated_ids(nb):
        verdict.problems.append(f"cells were copied (duplicated ids {sorted(set(duplicated_ids(nb)))}); "
                                "the first of each was graded")
    missing_tests = sorted(set(spec.checks) - set(first_cells_by_id(nb)))
    if missing_tests:
        verdict.problems.append(f"test cells {missing_tests} were deleted or renamed; the grader checks them anyway")
    cells = first_cells_by_id(nb)
    answers = answer_cells(nb)
    code = {gid: cells[gid].source for gid in spec.code_cells if gid in cells}
    for suspicion in inspect_cells(code):  # read as text here, never run: embedded data, code built at run time
        verdict.flag(suspicion)
    inputs = spec.make_inputs() if spec.make_inputs is not None else None
    ctx = CheckContext(answers=answers, cells=code, inputs=inputs, flags=verdict.flags)
    facts = None
    if spec.graded_on_data:
        if data is None:
            raise ValueError(f"{spec.name} is graded on data: pass the GradingData")
        results = _read_results_json(submitted.files.get(spec.results_file))
        ctx = replace(ctx, reported=parse_results_table(answers.get(spec.results_table_cell, "")),
                      results_metrics=results.get("metrics") if isinstance(results.get("metrics"), dict) else {},
                      tiers=data.setting.tiers)  # the term's declared thresholds (course.toml), for the tier checks
        if len(submitted.files.get(spec.checkpoint, b"")) > MAX_CHECKPOINT_BYTES:
            verdict.problems.append(too_big(spec.checkpoint, MAX_CHECKPOINT_BYTES))
        elif spec.checkpoint in submitted.files:
            try:
                facts = CheckpointFacts.read(submitted.files[spec.checkpoint])
            except ValueError as err:
                verdict.problems.append(f"{spec.checkpoint} could not be read: {err}")
                ctx = replace(ctx, checkpoint_error=f"{spec.checkpoint} could not be read: {err}")
        elif spec.checkpoint not in submitted.refused:
            verdict.problems.append(f"no checkpoint: {spec.checkpoint} is missing from the submission")
        ctx = replace(ctx, checkpoint=facts)
        mismatch = data.setting.mismatch(results.get("mode"), results.get("measured_on"))
        if mismatch:
            verdict.problems.append(mismatch)
            ctx = replace(ctx, setting_mismatch=mismatch)
    isolation = replace(isolation or Isolation(), kept_modules=spec.sandbox_modules)
    compare = _weight_probe_images(data) if facts is not None else []
    obs = _run_probes(spec, submitted, code, facts, data, inputs, compare, limits, isolation, verdict, run)
    if spec.graded_on_data:
        miou, miou_error = _score_predictions(obs, data, facts, verdict, compare)
        ctx = replace(ctx, miou=miou, miou_error=ctx.checkpoint_error if miou is None and ctx.checkpoint_error
                      else miou_error)
        verdict.miou = miou
        predictions = obs.get("predictions") if isinstance(obs.get("predictions"), dict) else {}
        verdict.sandbox.update({k: predictions[k][:300] for k in ("device", "device_note")
                                if isinstance(predictions.get(k), str) and predictions.get(k)})
    for gid, check in spec.checks.items():
        verdict.checks[gid] = run_check(gid, check, obs, ctx)
    verdict.seconds = time.perf_counter() - start
    return verdict


def _weight_probe_images(data: GradingData | None) -> list[int]:
    """``WEIGHT_PROBE_IMAGES`` public and as many held-out images, drawn afresh for every run."""
    if data is None:
        return []
    n_public, n_heldout = len(data.public), len(data.heldout)
    rng = secrets.SystemRandom()
    public = rng.sample(range(n_public), min(WEIGHT_PROBE_IMAGES, n_public))
    heldout = rng.sample(range(n_public, n_public + n_heldout), min(WEIGHT_PROBE_IMAGES, n_heldout))
    return sorted(public + heldout)


def run_check(gid: str, check, obs: dict, ctx: CheckContext) -> CheckResult:
    """One verdict on the observations: a message (full points), ``PartialCredit``, or a failure (none)."""
    try:
        result = check(obs, ctx)
    except AssertionError as err:
        return CheckResult(gid, _capped(str(err)), 0.0)
    except Exception as err:  # malformed observations (a forged file) must not crash the grader
        return CheckResult(gid, _capped(f"could not be checked ({type(err).__name__}: {err})"), 0.0)
    if isinstance(result, PartialCredit):
        return CheckResult(gid, _capped(result.message), result.fraction, result.parts)
    return CheckResult(gid, _capped(result), 1.0)


def _capped(message: str) -> str:
    """A message no longer than ``MAX_MESSAGE_CHARS`` (it may quote what the student's code sent)."""
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + " [...]"


def _save(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _run_probes(spec: Assignment, submitted: Submitted, cells: dict, facts: CheckpointFacts | None,
                data: GradingData | None, inputs: dict | None, compare: list[int], limits: Limits,
                isolation: Isolation, verdict: Verdict, run=run_sandboxed) -> dict:
    """The sandboxed runs (``run``): what goes in are copies made here; what comes back is read from the grader's
    pipe.

    Two runs when a checkpoint is judged on data. The *code run* executes every probe but ``HELDOUT_PROBE`` on the
    per-run challenge and the checkpoint: no held-out image is in it, so what the student's code says there (its
    errors, its own names) may reach the student's feedback. The *held-out run* predicts on the public and held-out
    images, with the checkpoint and with random weights: student code could read the held-out images there and
    write them into an exception's message (round 4 leaked a fingerprint of the held-out scenes that way), so
    nothing it says comes back but tensors, numbers and the allow-listed names of exception types
    (``_heldout_claims``); its messages and stderr stay in ``Verdict.sandbox`` (the grader's record, for the TA).
    """
    files = {"runner.py": RUNNER.read_bytes(), "probes.py": Path(spec.probes_file).read_bytes()}
    code_spec = {"cells": cells, "probes_file": "probes.py", "checkpoint": None, "threads": 1, "device": "cpu"}
    if inputs is not None:
        files["inputs.pt"] = _save(inputs)
        code_spec["inputs"] = "inputs.pt"
    if facts is not None:
        files["checkpoint.pt"] = submitted.files[spec.checkpoint]
        code_spec["checkpoint"] = "checkpoint.pt"
    heldout_run = data is not None and facts is not None
    if heldout_run:
        code_spec["skip"] = [HELDOUT_PROBE]
    obs, reason, result = _sandboxed(files, code_spec, limits, isolation, verdict, run, held_out=False)
    verdict.sandbox = _run_record(result)
    if obs is None:
        verdict.problems.append(reason)
        return {"sandbox_error": reason}
    if not heldout_run:
        return obs
    # images only: the masks never leave this process
    files["images.pt"] = _save(torch.cat([data.public.images, data.heldout.images]))
    files["random_weights.pt"] = _save(facts.random_copy(secrets.randbits(62)))
    heldout_spec = dict(code_spec, skip=[], only=[HELDOUT_PROBE], images="images.pt", device=data.setting.evaluate_on,
                        random_weights="random_weights.pt", compare_images=compare)
    if heldout_spec["device"] == "cuda":  # CUDA reserves far more address space than it uses: no RLIMIT_AS there
        limits = replace(limits, memory_bytes=RLIM_INFINITY)
        isolation = replace(isolation, gpu=True)
    found, reason, result = _sandboxed(files, heldout_spec, limits, isolation, verdict, run, held_out=True)
    verdict.sandbox["heldout_run"] = _run_record(result)
    if found is None:
        obs[HELDOUT_PROBE] = {"error": reason}
        return obs
    raw = found.get(HELDOUT_PROBE) if isinstance(found.get(HELDOUT_PROBE), dict) else {"error": "no predictions"}
    said = {k: str(raw[k])[:300] for k in ("error", "random_weights_error", "device_note") if raw.get(k)}
    if said:  # for the TA only (the grader's record), never the feedback
        verdict.sandbox["heldout_run"]["said"] = said
    obs[HELDOUT_PROBE] = _heldout_claims(raw)
    return obs


HELDOUT_PROBE = "predictions"  # the probe that sees the held-out images (run apart: ``_run_probes``)
SHOWN_EXCEPTIONS = frozenset(name for name, value in vars(builtins).items()
                             if isinstance(value, type) and issubclass(value, BaseException))


def _exception_kind(text: object) -> str:
    """The type named at the start of a probe's ``"Type: message"``, when it is one of Python's own exceptions
    (a name the student's code chose could spell anything); else ``"an exception"``."""
    name = str(text).split(":", 1)[0].strip()
    return name if name in SHOWN_EXCEPTIONS else "an exception"


def _heldout_claims(raw: dict) -> dict:
    """What the held-out run's predictions may tell: tensors, a boolean, the device's name, and for an error only
    the kind of exception and which probe raised it."""
    claims = {k: raw[k] for k in ("preds", "random_weights_preds") if isinstance(raw.get(k), torch.Tensor)}
    claims["finite"] = raw.get("finite") is True
    if raw.get("device") in ("cpu", "cuda", "cuda:0"):
        claims["device"] = raw["device"]
    if raw.get("device_note"):
        claims["device_note"] = "CUDA was unusable in the sandbox; evaluated on the CPU"
    withheld = ("(its message is not shown: this run holds the held-out images, which a message could carry out; "
                "the parameters check loads the same checkpoint and shows its errors)")
    if "error" in raw or "preds" not in claims:
        claims["error"] = (f"{_exception_kind(raw.get('error'))} was raised while predicting on the grader's images "
                           f"{withheld}")
    if raw.get("random_weights_error"):
        claims["random_weights_error"] = (f"{_exception_kind(raw['random_weights_error'])} was raised while "
                                          "predicting with random weights")
    return claims


def _run_record(result: RunResult) -> dict:
    """How a sandboxed run went, for the grader's record (``Verdict.sandbox``; the TA's, not the feedback)."""
    return {"returncode": result.returncode, "timed_out": result.timed_out, "seconds": round(result.seconds, 2),
            "isolated": result.isolated, "stderr_tail": result.stderr_tail[-800:]}


def _sandboxed(files: dict[str, bytes], run_spec: dict, limits: Limits, isolation: Isolation, verdict: Verdict,
               run, held_out: bool) -> tuple[dict | None, str | None, RunResult]:
    """One sandboxed run of the runner on ``run_spec``: its observations, or ``None`` and the reason in words for
    the student's row (a ``held_out`` run's reason never quotes what its process wrote)."""
    nonce = secrets.token_hex(16)
    files = dict(files, **{"spec.json": json.dumps(dict(run_spec, nonce=nonce)).encode()})
    env = minimal_env({"MPLCONFIGDIR": "/tmp"})
    result = run("runner.py", files, limits, isolation, env)
    if not result.isolated and "graded WITHOUT a sandbox" not in " ".join(verdict.problems):
        verdict.problems.append("graded WITHOUT a sandbox (the TA's --unsafe): the student's code ran with the "
                                "grader's access to this machine")
    doing = " while predicting on the grader's images" if held_out else ""
    started = result.output.startswith(STARTED)
    payload = result.output[len(STARTED):] if started else b""
    if not started and result.isolated and not result.timed_out:
        reason = "the grader's sandbox could not start (a grader problem, not yours)" + (
            "" if held_out else f": {result.stderr_tail.strip()[-300:]}")
    elif result.timed_out:
        reason = f"your code ran past the {limits.wall_seconds:.0f} s limit{doing} and was stopped"
    elif result.output_overflow:
        reason = f"your code sent more than {limits.output_bytes // 1024**2} MB of results{doing}; nothing was read"
    elif not payload:
        last = "" if held_out else (result.stderr_tail.strip().splitlines()[-1:] or [""])[0][:200]
        reason = f"your code ended the grading process{doing} (exit code {result.returncode}) {last}".strip()
    else:
        try:
            obs = load_tensors(payload)
            if not isinstance(obs, dict):
                reason = "the grading process returned malformed results"
            elif obs.get("nonce") != nonce:
                reason = "the grading process returned results that do not answer this run's challenge"
                verdict.flag("the observations do not answer this run's challenge (replayed or written by the "
                             "submission's code): every check that needs them scores 0")
            else:
                return obs, None, result
        except ValueError as err:
            reason = "the grading process returned unreadable results" + ("" if held_out else f" ({err})")
    return None, reason, result
