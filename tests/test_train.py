"""Training loop, evaluation, checkpoints, run-time helpers, and the submission helper."""

import json
import pickle

import pytest
import torch
from torch import nn

from course_lib.data import load_synthetic
from course_lib.models import build_model
from course_lib.submission import REQUIRED_METRICS, save_submission, verify_submission
from course_lib.train import (
    CheckpointError, TrainConfig, evaluate, fit, load_checkpoint, load_state_dict_strict, lr_factor,
    TrainingTooSlow, progress_enabled, save_checkpoint,
)

TINY = TrainConfig(num_epochs=2, batch_size=8, lr=3e-3, progress=False)


@pytest.fixture(scope="module")
def tiny_data():
    return load_synthetic("train", num_images=24), load_synthetic("val", num_images=8)


def test_fit_returns_history_and_learns(tiny_data):
    train, val = tiny_data
    model = build_model("fcn", width=8)
    lines = []
    history = fit(model, train, val, TINY, log=lines.append)
    assert [r.epoch for r in history.records] == [1, 2] and len(lines) == 2
    assert history.records[-1].train_loss < history.records[0].train_loss
    assert 0 <= history.final.val_miou <= 1 and 0 <= history.final.val_pixel_accuracy <= 1
    assert history.to_dataframe().shape[0] == 2 and not model.training
    assert json.dumps(history.to_dict())


def test_the_clock_is_only_a_safety_cap_that_says_why_it_stopped(tiny_data):
    train, val = tiny_data
    cfg = TrainConfig(num_epochs=3, batch_size=8, max_seconds=1e-3, expected_epoch_seconds=16, progress=False)
    with pytest.raises(ValueError, match="num_threads"):
        TrainConfig(num_threads=0)
    with pytest.raises(TrainingTooSlow) as err:
        fit(build_model("fcn", width=8), train, val, cfg, log=None)
    message = str(err.value)
    assert "s per epoch" in message and "expects about 16 s per epoch" in message and "max_seconds" in message


def test_a_run_without_cap_does_every_epoch(tiny_data):
    train, val = tiny_data
    history = fit(build_model("fcn", width=8), train, val, TrainConfig(num_epochs=3, batch_size=8, progress=False),
                  log=None)
    assert [r.epoch for r in history.records] == [1, 2, 3]


def _train_reference_briefly(data) -> dict:
    from autograder.reference.segmentation_hw import SegmentationModel

    train, val = data
    torch.manual_seed(0)
    model = SegmentationModel(width=8, num_blocks=1)
    fit(model, train, val, TrainConfig(num_epochs=2, batch_size=8, progress=False), log=None)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_weights_bit_for_bit_even_with_a_core_kept_busy(tiny_data):
    """The recipe's result does not depend on how busy the machine is: one run idle, one run while another
    process keeps a core busy, identical weights (CPU, deterministic algorithms, same thread count)."""
    import subprocess
    import sys

    idle = _train_reference_briefly(tiny_data)
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _train_reference_briefly(tiny_data)
    finally:
        burner.kill()
        burner.wait()
    assert idle.keys() == busy.keys()
    different = [k for k in idle if not torch.equal(idle[k], busy[k])]
    assert different == [], f"weights differ between the idle and the busy run: {different[:5]}"


def test_a_fixed_thread_count_gives_the_same_weights_whatever_the_callers_thread_count(tiny_data):
    """A recipe with ``num_threads`` trains under that count and restores the caller's afterwards, so the weights
    do not depend on how many cores the machine has (or what OMP_NUM_THREADS says)."""
    from autograder.reference.segmentation_hw import SegmentationModel

    train, val = tiny_data
    cfg = TrainConfig(num_epochs=1, batch_size=8, num_threads=1, progress=False)
    seen, weights = [], []
    previous = torch.get_num_threads()
    try:
        for caller_threads in (2, 1):
            torch.set_num_threads(caller_threads)
            torch.manual_seed(0)
            model = SegmentationModel(width=8, num_blocks=1)
            fit(model, train, val, cfg, log=lambda line: seen.append(torch.get_num_threads()))
            assert torch.get_num_threads() == caller_threads, "fit must restore the caller's thread count"
            weights.append(model.state_dict())
    finally:
        torch.set_num_threads(previous)
    assert seen == [1, 1], f"training ran with {seen} threads, the recipe says 1"
    different = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    assert different == [], f"weights depend on the caller's thread count: {different[:5]}"


def test_fit_writes_nothing_to_stderr_when_grading(tiny_data, capfd, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    train, val = tiny_data
    fit(build_model("fcn", width=8), train, val, TrainConfig(num_epochs=1, batch_size=8, progress=True))
    out, err = capfd.readouterr()
    assert err == "" and "val mIoU" in out


def test_progress_enabled_rules(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert progress_enabled(True) and not progress_enabled(False)
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert not progress_enabled(True)


def test_evaluate_checks_output_shape(tiny_data):
    _, val = tiny_data

    class Wrong(nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 21, 32, 32)

    with pytest.raises(ValueError, match="expected \\(N, 21, 64, 64\\)"):
        evaluate(Wrong(), val)


def test_evaluate_perfect_model_scores_one(tiny_data):
    _, val = tiny_data
    lookup = {tuple(img.flatten().tolist()[:64]): m for img, m in zip(val.images, val.masks)}

    class Oracle(nn.Module):  # reads the answer off the image: proves evaluate's arithmetic end to end
        def forward(self, x):
            from course_lib.data import denormalize_images
            imgs = (denormalize_images(x) * 255).round().to(torch.uint8)
            masks = torch.stack([lookup[tuple(i.flatten().tolist()[:64])].long() for i in imgs])
            return torch.nn.functional.one_hot(masks.clamp(max=20), 21).permute(0, 3, 1, 2).float()

    result = evaluate(Oracle(), val)
    assert result.miou == pytest.approx(1.0) and result.pixel_accuracy == pytest.approx(1.0)


def test_lr_schedules():
    assert lr_factor(0.0, "onecycle", 0.1) == pytest.approx(0.05) and lr_factor(0.1, "onecycle", 0.1) == pytest.approx(1.0)
    assert lr_factor(1.0, "cosine", 0) == pytest.approx(0.0) and lr_factor(0.5, "constant", 0) == 1.0
    assert lr_factor(1.0, "poly", 0) == 0.0


def test_config_validation_and_round_trip():
    cfg = TrainConfig(scale_range=(0.5, 2.0))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"epochs": 3})


def test_checkpoint_round_trip_weights_only(tmp_path):
    model = build_model("fcn", width=8)
    path = save_checkpoint(tmp_path / "ck.pt", model, {"width": 8}, TINY.to_dict(), {"miou": 0.4})
    payload = load_checkpoint(path)
    assert payload["model_kwargs"] == {"width": 8} and payload["metrics"] == {"miou": 0.4}
    assert TrainConfig.from_dict(payload["config"]) == TINY
    clone = build_model("fcn", width=8)
    load_state_dict_strict(clone, payload["state_dict"])
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), clone.state_dict().values()))


def test_bare_state_dict_is_accepted(tmp_path):
    model = build_model("pixelwise")
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    assert load_checkpoint(tmp_path / "bare.pt")["format"] == "state_dict"


class Boom:
    def __reduce__(self):
        return (eval, ("__import__('os').system('echo pwned')",))


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*submission cell"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable weights-only checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"state_dict": Boom()}, f)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "evil.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds no state_dict"):
        load_checkpoint(tmp_path / "list.pt")
    torch.save({"format": "course_lib.checkpoint/0", "state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="of format 'course_lib.checkpoint/0'; this course_lib reads"):
        load_checkpoint(tmp_path / "old.pt")


def test_strict_load_names_the_mismatch():
    small, large = build_model("fcn", width=8), build_model("fcn", width=16)
    with pytest.raises(CheckpointError, match="shape mismatch .*features.0.0.weight: checkpoint \\(16, 3, 3, 3\\) vs model \\(8, 3, 3, 3\\)"):
        load_state_dict_strict(small, large.state_dict())
    with pytest.raises(CheckpointError, match="missing keys"):
        load_state_dict_strict(small, {})


def test_submission_saves_and_verifies(tmp_path):
    model = build_model("fcn", width=8)
    metrics = {"miou": 0.3, "pixel_accuracy": 0.8, "num_parameters": 100, "training_minutes": 1.5}
    path = save_submission(model, {"width": 8}, metrics, tmp_path)
    assert path.is_file() and json.loads((tmp_path / "segmentation_hw_results.json").read_text())["metrics"] == metrics
    reloaded = verify_submission(type(model), model, tmp_path)
    assert isinstance(reloaded, type(model))


def test_submission_catches_wrong_kwargs_and_missing_metrics(tmp_path):
    model = build_model("fcn", width=8)
    metrics = dict.fromkeys(REQUIRED_METRICS, 1.0)
    with pytest.raises(CheckpointError, match="does not fit"):
        save_submission(model, {"width": 16}, metrics, tmp_path)
    with pytest.raises(CheckpointError, match="fails"):
        save_submission(model, {"depth": 3}, metrics, tmp_path)
    with pytest.raises(ValueError, match="missing \\['training_minutes'\\]"):
        save_submission(model, {"width": 8}, {k: 1.0 for k in REQUIRED_METRICS[:3]}, tmp_path)
    with pytest.raises(ValueError, match="finite"):
        save_submission(model, {"width": 8}, {**metrics, "miou": float("nan")}, tmp_path)


def test_fit_says_what_is_wrong_with_a_model_of_the_wrong_output_shape(tiny_data):
    train, val = tiny_data

    class HalfSize(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 21, 3, stride=2, padding=1)

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(ValueError, match=r"must return logits of shape \(2, 21, 64, 64\).*upsampling path"):
        fit(HalfSize(), train, val, TINY, log=None)
