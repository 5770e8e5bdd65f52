"""Estimates said before training (fast: a few timed steps on small data; no figure is asserted, only what the
estimate counts: the measured speeds go in bench/term_data.py)."""

from __future__ import annotations

import pytest
import torch

from autograder.reference.segmentation_hw import SegmentationModel
from course_lib.data import load_synthetic
from course_lib.train.estimate import (TrainingOnCPU, _gflops, describe_device, device_check, duration, estimate_fit,
                                       estimate_recipe)
from course_lib.train.recipes import RECIPES, QUICK


@pytest.mark.parametrize("mode", sorted(RECIPES))
def test_the_declared_flops_of_each_recipe_are_the_reference_models(mode):
    recipe = RECIPES[mode]
    # counted at 16x16 (a sixteenth of the work; the FLOPs scale with the pixels: 16x at 64x64, the declared size)
    counted = tuple(16 * _gflops(SegmentationModel(**dict(recipe.model_kwargs, downsample=d)), (16, 16)) for d in (True, False))
    assert recipe.train_gflops == pytest.approx(counted, rel=1e-3)


def test_an_estimate_counts_the_runs_steps_and_evaluations_and_says_it_is_one():
    train, val = load_synthetic("train", num_images=40), load_synthetic("val", num_images=8)
    model = SegmentationModel(**QUICK.model_kwargs)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    estimate = estimate_fit(model, train, val, QUICK.train, steps=2, warmup=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is not trained
    assert estimate.steps == QUICK.train.num_epochs * (40 // QUICK.train.batch_size) and estimate.epochs == 5
    assert estimate.seconds > estimate.seconds_per_step * estimate.steps > 0  # evaluations on top of the steps
    assert "an estimate from 2 timed steps" in estimate.describe() and estimate.device.startswith("cpu (")


def test_a_recipe_estimate_needs_no_model_of_the_students():
    train, val = load_synthetic("train", num_images=40), load_synthetic("val", num_images=8)
    estimate = estimate_recipe(QUICK, train, val, steps=2, warmup=1)
    assert estimate.steps == 2 * QUICK.train.num_epochs * (40 // QUICK.train.batch_size)  # both models
    assert "stand-in network, scaled by FLOPs" in estimate.describe()


@pytest.mark.slow  # two timed probes of the FULL recipe: training steps, kept out of the fast tier
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_the_set_up_guard_stops_a_gpu_mode_on_a_cpu_unless_the_student_insists():
    train, val = load_synthetic("train", 16, num_images=16), load_synthetic("val", 16, num_images=4)
    lines = []
    assert device_check("QUICK", train, val, log=lines.append).type == "cpu"
    assert lines == [f"training on {describe_device('cpu')}: QUICK mode, 5 epochs per model"]
    with pytest.raises(TrainingOnCPU, match=r"FULL mode is meant for a GPU .* would take about .*an estimate .*"
                                            r"keep MODE = \"QUICK\".*set INSIST = True"):
        device_check("FULL", train, val, log=lines.append)
    lines.clear()
    assert device_check("FULL", train, val, insist=True, log=lines.append).type == "cpu"
    assert lines[-1].startswith("WARNING: FULL mode is meant for a GPU") and lines[-1].endswith("as asked.")


def test_durations_read_naturally():
    assert (duration(40), duration(12 * 60), duration(3.1 * 3600)) == ("40 s", "12 min", "3.1 h")
