"""What a student hands in next to the notebook, and how the grader reads it back.

``save_submission`` writes two files into the notebook's folder:

- ``<name>_checkpoint.pt``: the state_dict, the model's constructor arguments, the training configuration and the
  measured metrics (``course_lib.train.checkpoint`` format, readable with ``weights_only=True``);
- ``<name>_results.json``: the same metrics and arguments as plain JSON, plus the parameter count, the mode
  (``"QUICK"`` or ``"FULL"``) and the split the metrics were measured on (``course_lib.data.data_record``), which
  the grader compares with the term's declared setting, and the run's ``seed`` and ``config``
  (``TrainConfig.to_dict()``): each student trains with a seed of their own (``course_lib.train.training_seed``),
  which the similarity report reads.

It then rebuilds the model from the class and the arguments, loads the checkpoint strictly and checks
that it computes the same logits, so a submission that cannot be reloaded is caught before the deadline.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from dataclasses import dataclass

import torch
from torch import nn

from course_lib.data.dataset import SegmentationTensors
from course_lib.data.sources import data_record
from course_lib.train.config import TrainConfig
from course_lib.train.loop import History
from course_lib.train.checkpoint import CheckpointError, load_checkpoint, load_state_dict_strict, save_checkpoint

REQUIRED_METRICS = ("miou", "pixel_accuracy", "num_parameters", "training_minutes")


def submission_paths(directory: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """(checkpoint path, results JSON path) of a submission."""
    directory = Path(directory)
    return directory / f"{name}_checkpoint.pt", directory / f"{name}_results.json"


def _plain(value):
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def save_submission(model: nn.Module, model_kwargs: dict, metrics: dict, directory: str | os.PathLike = ".",
                    name: str = "segmentation_hw", history: History | None = None, input_size: int = 64,
                    data: SegmentationTensors | None = None, mode: str | None = None,
                    config: TrainConfig | None = None) -> Path:
    """Saves the checkpoint and results of a trained model and proves they reload.

    Args:
        model: the trained model.
        model_kwargs: the exact keyword arguments the model was built with: ``type(model)(**model_kwargs)``
            must rebuild the same architecture.
        metrics: at least ``REQUIRED_METRICS`` (floats): mIoU and pixel accuracy on the validation split,
            the parameter count and the training time in minutes.
        directory: the folder of the notebook.
        name: file-name prefix.
        history: the training history, stored so that grading runs can redraw the curves without training.
        input_size: side of the random test input used for the reload check.
        data: the validation split the metrics were measured on (its name, size and class count are recorded).
        mode: the recipe's name (``"QUICK"`` or ``"FULL"``).
        config: the run's ``TrainConfig``; its ``seed`` is recorded as ``"seed"`` in the results file, the whole of it
            as ``"config"`` there and in the checkpoint.
    Returns:
        The checkpoint path.
    Raises:
        ValueError: a required metric is missing or not a finite number.
        CheckpointError: the model cannot be rebuilt from ``model_kwargs`` or gives other outputs after reloading.
    """
    metrics = {k: _plain(v) for k, v in metrics.items()}
    missing = [k for k in REQUIRED_METRICS if k not in metrics]
    if missing:
        raise ValueError(f"metrics is missing {missing}; give every one of {list(REQUIRED_METRICS)}")
    for key in REQUIRED_METRICS:
        if not isinstance(metrics[key], (int, float)) or not math.isfinite(metrics[key]):
            raise ValueError(f"metrics[{key!r}] must be a finite number, got {metrics[key]!r}")
    model_kwargs = {k: _plain(v) for k, v in model_kwargs.items()}
    checkpoint, results = submission_paths(directory, name)
    settings = config.to_dict() if config is not None else None
    save_checkpoint(checkpoint, model, model_kwargs=model_kwargs, config=settings, metrics=metrics)
    results.write_text(json.dumps({"model_class": type(model).__name__, "model_kwargs": model_kwargs,
                                   "metrics": metrics, "mode": mode,
                                   "measured_on": data_record(data) if data is not None else None,
                                   "seed": config.seed if config is not None else None, "config": settings,
                                   "history": history.to_dict() if history else None}, indent=2))
    verify_submission(type(model), model, directory, name, input_size)
    return checkpoint


@torch.no_grad()
def verify_submission(model_class: type[nn.Module], reference: nn.Module | None = None,
                      directory: str | os.PathLike = ".", name: str = "segmentation_hw",
                      input_size: int = 64) -> nn.Module:
    """Rebuilds ``model_class(**model_kwargs)`` from a saved submission and loads its weights strictly.

    When ``reference`` is given, the reloaded model must produce the same logits on a random input.
    Returns the reloaded model (eval mode, CPU).
    """
    checkpoint, _ = submission_paths(directory, name)
    payload = load_checkpoint(checkpoint)
    try:
        rebuilt = model_class(**payload["model_kwargs"])
    except TypeError as err:
        raise CheckpointError(f"{model_class.__name__}(**{payload['model_kwargs']}) fails: {err}. "
                              "Pass the exact constructor arguments as model_kwargs.") from err
    load_state_dict_strict(rebuilt, payload["state_dict"])
    rebuilt.eval()
    if reference is not None:
        was_training = reference.training
        device = next(reference.parameters()).device
        reference.eval()
        x = torch.randn(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
        expected = reference(x.to(device)).float().cpu()
        reference.train(was_training)
        got = rebuilt(x).float()
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-3, rtol=1e-3):
            raise CheckpointError("the reloaded model computes different logits: were model_kwargs the ones "
                                  "the model was built with?")
    return rebuilt


@dataclass
class Submission:
    """A submission read back: the rebuilt model and what was measured when it was saved."""

    model: nn.Module
    model_kwargs: dict
    metrics: dict
    history: History | None


def load_submission(model_class: type[nn.Module], directory: str | os.PathLike = ".",
                    name: str = "segmentation_hw") -> Submission:
    """Rebuilds the submitted model (weights loaded strictly, eval mode, CPU) with its metrics and history.

    Raises:
        CheckpointError: the checkpoint is missing, unreadable or does not fit ``model_class``.
    """
    model = verify_submission(model_class, None, directory, name)
    payload = load_checkpoint(submission_paths(directory, name)[0])
    _, results = submission_paths(directory, name)
    history = None
    if results.is_file():
        try:
            stored = json.loads(results.read_text()).get("history")
            history = History.from_dict(stored) if stored else None
        except (ValueError, TypeError):
            history = None
    return Submission(model, payload["model_kwargs"], payload["metrics"], history)


def results_table(metrics: dict) -> str:
    """The homework's results table (Q1) as Markdown, filled from measured metrics."""
    rows = [
        ("Final Validation mIoU", f"{metrics['miou']:.4f}"),
        ("Final Pixel Accuracy", f"{metrics['pixel_accuracy']:.4f}"),
        ("Total Model Parameters", f"{int(metrics['num_parameters']):,}"),
        ("Training Time (minutes)", f"{metrics['training_minutes']:.2f}"),
    ]
    return "\n".join(["| Metric | Value |", "|--------|-------|"] + [f"| {k} | {v} |" for k, v in rows])
