"""The judge: grades one submission folder with the hidden checks, student code confined to a sandbox.

1. The notebook is read as data (never executed here); a notebook that is not valid JSON, or not this
   assignment's, or has lost its graded cells, fails every check with that reason.
2. The student's class cells, the probes script, the images (never the masks) and a copy of the checkpoint go
   into a scratch directory; ``sandbox_runner.py`` runs there under ``Limits`` and saves its observations.
3. Observations are read back with ``torch.load(weights_only=True)``; the mIoU is computed here with
   ``course_lib``'s confusion matrix, on the term's validation split and on held-out data drawn from the term's
   secret (``autograder.heldout``); the verdicts decide.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from autograder import config
from autograder.assignment import Assignment, CheckContext
from autograder.checks import get_assignment
from autograder.checks.common import PartialCredit, PartScore
from autograder.heldout import HELDOUT_GAP, GradingData, grading_data
from autograder.notebook import (
    SubmissionError, answer_cells, duplicated_ids, first_cells_by_id, read_notebook, require_assignment,
)
from course_lib.answers import parse_results_table
from autograder.sandbox import JAIL_SETUP_FAILED, JAIL_UID_BASE, RLIM_INFINITY, Jail, Limits, grader_secrets, minimal_env, python_command, run_limited, scratch_dir
from course_lib.data import SegmentationTensors
from course_lib.metrics import ConfusionMatrix, mean_iou

RUNNER = Path(__file__).with_name("sandbox_runner.py")
MAX_CHECKPOINT_BYTES = 200 * 1024**2
MAX_RESULTS_BYTES = 1024**2


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


def _miou(preds: torch.Tensor, data: SegmentationTensors) -> float:
    cm = ConfusionMatrix(data.num_classes)
    cm.update(preds.long().clamp(max=data.num_classes - 1), data.masks.long())
    return mean_iou(cm.matrix)


def _score_predictions(obs: dict, data: GradingData) -> tuple[dict | None, str | None]:
    pred = obs.get("predictions") or {}
    if "error" in pred or "preds" not in pred:
        return None, f"the submitted checkpoint could not be evaluated: {pred.get('error', 'no predictions')}"
    preds = pred["preds"]
    n_public = len(data.public)
    n_total = n_public + len(data.heldout)
    expected = (n_total, *data.public.image_size)
    if not isinstance(preds, torch.Tensor) or tuple(preds.shape) != expected:
        return None, (f"the model's logits have shape {pred.get('logits_shape')}: expected (N, "
                      f"{data.public.num_classes}, {data.public.image_size[0]}, {data.public.image_size[1]})")
    if not pred.get("finite", False):
        return None, "the model's logits contain NaN or Inf"
    public = _miou(preds[:n_public], data.public)
    heldout = _miou(preds[n_public:], data.heldout)
    effective = heldout if public - heldout > HELDOUT_GAP else public
    return {"public": public, "heldout": heldout, "effective": effective, "heldout_kind": data.heldout_kind}, None



def _read_results_json(path: Path) -> dict:
    """The results file as a dict (``{}`` when missing, too big or not a JSON object)."""
    if not path.is_file() or path.stat().st_size > MAX_RESULTS_BYTES:
        return {}
    try:
        results = json.loads(path.read_text())
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


def course_jail(course_root: Path, data: GradingData | None, db_url: str | None = None,
                uid: int = JAIL_UID_BASE) -> Jail:
    """The jail of a judge run under ``uid``: hides the grader's files, the course's (``db_url``: its gradebook)
    and the graded data's."""
    dirs, files = grader_secrets(course_root, db_url, data.hidden_paths if data is not None else ())
    return Jail(uid=uid, hide_dirs=dirs, hide_files=files)


def judged_files(spec: Assignment) -> list[str]:
    """The submission's files the judge reads: the notebook and, for an assignment graded on data, the results file
    and the checkpoint."""
    return [spec.notebook, *((spec.results_file, spec.checkpoint) if spec.graded_on_data else ())]


def judge_submission(folder: Path, assignment: str | Assignment = "segmentation_hw", data: GradingData | None = None,
                     limits: Limits = Limits(), jail: Jail | None = None, run=run_limited) -> Verdict:
    """Runs every hidden check of ``assignment`` (a name or a declaration) on the submission in ``folder``; the
    student's code runs in ``jail`` (default: hides the grader's files, the course's and the data's) where the
    machine supports it. ``data`` defaults to the term's (``autograder.heldout.grading_data``) of the default
    course of ``folder`` (``default_course_root``). ``run`` starts the sandbox's runner (``sandbox.run_limited``;
    the tests of what the checks decide pass one that runs it in their own process, ``tests/inprocess.py``)."""
    start = time.perf_counter()
    spec = assignment if isinstance(assignment, Assignment) else get_assignment(assignment)
    verdict = Verdict(spec.name)
    folder = Path(folder)
    try:
        nb = read_notebook(folder / spec.notebook)
        require_assignment(nb, set(spec.code_cells), spec.name)
    except SubmissionError as err:
        verdict.status = "invalid"
        verdict.problems.append(str(err))
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
    inputs = spec.make_inputs() if spec.make_inputs is not None else None
    ctx = CheckContext(answers=answers, cells=code, inputs=inputs)
    checkpoint = None
    if spec.graded_on_data:
        results = _read_results_json(folder / spec.results_file)
        ctx = replace(ctx, reported=parse_results_table(answers.get(spec.results_table_cell, "")),
                      results_metrics=results.get("metrics") if isinstance(results.get("metrics"), dict) else {})
        checkpoint = folder / spec.checkpoint
        if not checkpoint.is_file():
            verdict.problems.append(f"no checkpoint: {spec.checkpoint} is missing from the submission")
            checkpoint = None
        elif checkpoint.stat().st_size > MAX_CHECKPOINT_BYTES:
            verdict.problems.append(f"{spec.checkpoint} is over {MAX_CHECKPOINT_BYTES // 1024**2} MB; not loaded")
            checkpoint = None
        data = data or grading_data(default_course_root(folder))
        ctx = replace(ctx, tiers=data.setting.tiers)  # the term's declared thresholds (course.toml), for the tier checks
        mismatch = data.setting.mismatch(results.get("mode"), results.get("measured_on"))
        if mismatch:
            verdict.problems.append(mismatch)
            ctx = replace(ctx, setting_mismatch=mismatch)
    obs = _run_probes(spec, code, checkpoint, data, inputs, limits, verdict,
                      jail or course_jail(default_course_root(folder), data), run)
    if spec.graded_on_data:
        miou, miou_error = _score_predictions(obs, data)
        ctx = replace(ctx, miou=miou, miou_error=miou_error)
        verdict.miou = miou
        predictions = obs.get("predictions") if isinstance(obs.get("predictions"), dict) else {}
        verdict.sandbox.update({k: predictions[k] for k in ("device", "device_note") if predictions.get(k)})
    for gid, check in spec.checks.items():
        verdict.checks[gid] = run_check(gid, check, obs, ctx)
    verdict.seconds = time.perf_counter() - start
    return verdict


def run_check(gid: str, check, obs: dict, ctx: CheckContext) -> CheckResult:
    """One verdict on the observations: a message (full points), ``PartialCredit``, or a failure (none)."""
    try:
        result = check(obs, ctx)
    except AssertionError as err:
        return CheckResult(gid, str(err), 0.0)
    except Exception as err:  # malformed observations (a forged file) must not crash the grader
        return CheckResult(gid, f"could not be checked ({type(err).__name__}: {err})", 0.0)
    if isinstance(result, PartialCredit):
        return CheckResult(gid, result.message, result.fraction, result.parts)
    return CheckResult(gid, result, 1.0)


def _run_probes(spec: Assignment, cells: dict, checkpoint: Path | None, data: GradingData | None, inputs: dict | None,
                limits: Limits, verdict: Verdict, jail: Jail, runner=run_limited) -> dict:
    work = scratch_dir("judge-")
    try:
        return _probe_in(work, spec, cells, checkpoint, data, inputs, limits, verdict, jail, runner)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _probe_in(work: Path, spec: Assignment, cells: dict, checkpoint: Path | None, data: GradingData | None,
              inputs: dict | None, limits: Limits, verdict: Verdict, jail: Jail, runner=run_limited) -> dict:
    shutil.copy(RUNNER, work / "runner.py")
    shutil.copy(spec.probes_file, work / "probes.py")
    spec = {"cells": cells, "probes_file": "probes.py", "out": "observations.pt", "checkpoint": None, "threads": 1,
            "device": "cpu"}
    if data is not None:  # images only: the masks never leave this process
        torch.save(torch.cat([data.public.images, data.heldout.images]), work / "images.pt")
        spec["images"] = "images.pt"
        spec["device"] = data.setting.evaluate_on
        if spec["device"] == "cuda":  # CUDA reserves far more address space than it uses: no RLIMIT_AS there
            limits = replace(limits, memory_bytes=RLIM_INFINITY)
    if inputs is not None:
        torch.save(inputs, work / "inputs.pt")
        spec["inputs"] = "inputs.pt"
    if checkpoint is not None:
        shutil.copy(checkpoint, work / "checkpoint.pt")
        spec["checkpoint"] = "checkpoint.pt"
    (work / "spec.json").write_text(json.dumps(spec))
    env = minimal_env({"HOME": str(work), "MPLCONFIGDIR": str(work)})
    run = runner(python_command(work / "runner.py", "spec.json"), work, limits, env, jail)
    verdict.sandbox = {"returncode": run.returncode, "timed_out": run.timed_out, "seconds": round(run.seconds, 2),
                       "stderr_tail": run.stderr_tail[-800:]}
    out = work / "observations.pt"
    if run.returncode == JAIL_SETUP_FAILED and not out.is_file():
        reason = f"the grader's sandbox could not start (a grader problem, not yours): {run.stderr_tail.strip()[-300:]}"
    elif run.timed_out:
        reason = f"your code ran past the {limits.wall_seconds:.0f} s limit and was stopped"
    elif not out.is_file():
        last = run.stderr_tail.strip().splitlines()[-1:] or [""]
        reason = f"your code ended the grading process (exit code {run.returncode}) {last[0][:200]}".strip()
    else:
        try:
            obs = torch.load(out, map_location="cpu", weights_only=True)
            if isinstance(obs, dict):
                return obs
            reason = "the grading process returned malformed results"
        except Exception as err:
            reason = f"the grading process returned unreadable results ({type(err).__name__})"
    verdict.problems.append(reason)
    return {"sandbox_error": reason}
