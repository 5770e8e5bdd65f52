"""Observations are claims: the rules that keep forged ones from earning points, proven in this process (fast: no
sandbox; the sandboxed attacks, ``forged_by_runner`` and ``forged_by_torch_save``, are in ``test_adversarial.py``)."""

from __future__ import annotations

import io
import json
import textwrap
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.assignment import CheckContext
from autograder.checks import segmentation_hw_probes as probes
from autograder.checks.common import unimplemented_classes
from autograder.checks.segmentation_hw import CHECKS, make_challenge
from autograder.heldout import GradingData
from autograder.judge import CheckpointFacts, Verdict, _score_predictions, run_check
from autograder.reference.segmentation_hw import SegmentationModel
from autograder.term import GradedSetting
from course_lib.data import load_synthetic
from notebooks import REPO

REFERENCE = (REPO / "autograder" / "reference" / "segmentation_hw.py").read_text()
HONEST = {"residual_block": REFERENCE.split("# BEGIN ResidualBlock\n")[1].split("# END ResidualBlock")[0],
          "segmentation_model": REFERENCE.split("# BEGIN SegmentationModel\n")[1].split("# END SegmentationModel")[0]}


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread is fastest, and two OpenMP threads on a busy machine wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def release_cells() -> dict[str, str]:
    nb = json.loads((REPO / "release" / "segmentation_hw" / "segmentation_hw.ipynb").read_text())
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade_id") in HONEST}


def honest_observations(challenge: dict) -> dict:
    namespace = {"torch": torch, "nn": nn, "F": F}
    exec(HONEST["residual_block"] + HONEST["segmentation_model"], namespace)
    return {"residual_block": probes.probe_residual_block(namespace, challenge),
            "segmentation_model": probes.probe_segmentation_model(namespace, challenge)}


def judge(obs: dict, challenge: dict, cells: dict, **ctx) -> tuple[dict[str, float], list[str]]:
    flags: list[str] = []
    context = CheckContext(inputs=challenge, cells=cells, flags=flags, **ctx)
    fractions = {gid: run_check(gid, CHECKS[gid], obs, context).fraction
                 for gid in ("test_residual_block", "test_segmentation_model")}
    return fractions, flags


def test_honest_observations_earn_everything_and_raise_no_suspicion():
    challenge = make_challenge()
    fractions, flags = judge(honest_observations(challenge), challenge, HONEST)
    assert fractions == {"test_residual_block": 1.0, "test_segmentation_model": 1.0} and flags == []


def test_every_run_draws_a_new_challenge():
    first, second = make_challenge(), make_challenge()
    assert first["blocks"][0]["seed"] != second["blocks"][0]["seed"]
    assert not torch.equal(first["identity"]["input"][:1, :1, :4, :4], second["identity"]["input"][:1, :1, :4, :4])


def test_observations_replayed_from_another_run_fail_what_the_grader_verifies():
    """A correct run's observations, sent again for a new challenge: the block's function, shortcut and identity
    path are checked against the grader's own computation on the new inputs, and fail."""
    old, new = make_challenge(), make_challenge()
    obs = honest_observations(old)
    flags: list[str] = []
    result = run_check("test_residual_block", CHECKS["test_residual_block"], obs,
                       CheckContext(inputs=new, cells=HONEST, flags=flags))
    assert result.fraction <= 0.1, result.message  # at most the gradient's 1 point (it depends on no input shape)
    assert "identity path (0/2" in result.message and "specification (0/2" in result.message


def test_results_for_untouched_stubs_earn_nothing_and_are_flagged():
    """The best a forger could send for this very challenge, a correct run's answers, from a cell whose classes are
    the release's stubs: nothing, and the TA is told."""
    challenge = make_challenge()
    stubs = release_cells()
    stubs["residual_block"] += "\nimport torch\ntorch.save = lambda *args, **kwargs: None  # the forger's patch\n"
    fractions, flags = judge(honest_observations(challenge), challenge, stubs)
    assert fractions == {"test_residual_block": 0.0, "test_segmentation_model": 0.0}
    assert flags and all("forged" in flag for flag in flags)


def test_predictions_and_parameter_counts_for_a_stub_model_are_forged():
    state = SegmentationModel(num_classes=21, width=8, num_blocks=1).state_dict()
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "model_kwargs": {"num_classes": 21, "width": 8, "num_blocks": 1}}, buffer)
    facts = CheckpointFacts.read(buffer.getvalue())
    names = [n for n, _ in SegmentationModel(num_classes=21, width=8, num_blocks=1).named_parameters()]
    flags: list[str] = []
    ctx = CheckContext(inputs=make_challenge(), cells=release_cells(), flags=flags, checkpoint=facts,
                       reported={"num_parameters": sum(state[n].numel() for n in names), "miou": 0.5},
                       miou={"public": 0.5, "heldout": 0.5, "effective": 0.5, "heldout_kind": "held-out scenes"})
    obs = {"parameters": {"names": names}}
    for gid in ("test_parameter_count", "test_results_table", "test_miou_target"):
        assert run_check(gid, CHECKS[gid], obs, ctx).fraction == 0.0
    assert flags and all("forged" in flag for flag in flags)


@pytest.mark.parametrize("code, unimplemented", [
    ("x = 1", ["ResidualBlock"]),
    ("class ResidualBlock(nn.Module):\n    def __init__(self, a, b, s=1):\n        super().__init__()\n"
     "        raise NotImplementedError('not yet')\n", ["ResidualBlock"]),
    ("class ResidualBlock(nn.Module):\n    def forward(self, x):\n        '''doc'''\n        raise NotImplementedError\n",
     ["ResidualBlock"]),
    (HONEST["residual_block"], []),
    ("class ResidualBlock(nn.Module):\n    def forward(self, x):\n        raise NotImplementedError\n\n"
     + HONEST["residual_block"], []),  # the stub first, the work after it: the last definition counts
    ("class ResidualBlock(nn.Module):\n    def forward(self, x):\n        raise NotImplementedError\n"
     "ResidualBlock.forward = lambda self, x: x\n", []),  # patched afterwards: code that runs
    ("class ResidualBlock(nn.Module):\n    def forward(self, x):\n        raise NotImplementedError\n"
     "from course_lib.models import UNet as ResidualBlock\n", []),
    ("class ResidualBlock(nn.Module):\n    def forward(self, x):\n        raise NotImplementedError\n"
     "globals()['ResidualBlock'] = nn.Identity\n", []),  # bound in a way the source does not show: not certain
    ("def broken(:\n", ["ResidualBlock"]),  # a cell that does not compile defines nothing
])
def test_a_class_is_read_as_unimplemented_only_when_its_source_leaves_no_doubt(code, unimplemented):
    assert unimplemented_classes({"residual_block": textwrap.dedent(code)}, ("ResidualBlock",)) == unimplemented


def _facts(state: dict, kwargs: dict) -> CheckpointFacts:
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "model_kwargs": kwargs}, buffer)
    return CheckpointFacts.read(buffer.getvalue())


def test_buffers_named_like_batchnorm_statistics_but_shaped_like_weights_are_data():
    """Round 6: decoys named ``aux.N.running_mean`` with the shape of the convolutions' weights (copies of a
    classmate's, for the similarity report to pair) are reported as values besides the parameters; a real
    BatchNorm's statistics (one value per channel) are not."""
    kwargs = {"num_classes": 21, "width": 8, "num_blocks": 1}
    model = SegmentationModel(**kwargs)
    names = [n for n, _ in model.named_parameters()]
    params = sum(p.numel() for p in model.parameters())
    for state, reported in ((model.state_dict(), False),
                            (dict(model.state_dict(), **{"aux.0.running_mean": model.stem[0].weight.clone()}), True)):
        flags: list[str] = []
        ctx = CheckContext(cells=HONEST, flags=flags, checkpoint=_facts(state, kwargs),
                           reported={"num_parameters": params})
        result = run_check("test_parameter_count", CHECKS["test_parameter_count"], {"parameters": {"names": names}}, ctx)
        assert result.passed, result.message
        assert any("besides its parameters" in flag and "aux.0.running_mean" in flag for flag in flags) == reported


def test_the_parameter_count_is_the_graders_and_stored_buffers_are_reported():
    kwargs = {"num_classes": 21, "width": 8, "num_blocks": 1}
    model = SegmentationModel(**kwargs)
    names = [n for n, _ in model.named_parameters()]
    params = sum(p.numel() for p in model.parameters())
    state = dict(model.state_dict(), memory_masks=torch.zeros(30, 64, 64, dtype=torch.uint8))
    facts = _facts(state, kwargs)
    assert facts.stored == params + 30 * 64 * 64 and facts.finite
    copy = facts.random_copy(seed=1)["state_dict"]
    assert {k: v.shape for k, v in copy.items()} == {k: v.shape for k, v in state.items()}
    assert not torch.equal(copy["stem.0.weight"], state["stem.0.weight"]) and (copy["stem.1.running_var"] > 0).all()
    flags: list[str] = []
    ctx = CheckContext(cells=HONEST, flags=flags, checkpoint=facts, reported={"num_parameters": params})
    result = run_check("test_parameter_count", CHECKS["test_parameter_count"], {"parameters": {"names": names}}, ctx)
    assert result.passed, result.message
    assert any("besides its parameters" in flag and "memory_masks" in flag for flag in flags)
    claimed_fewer = {"parameters": {"names": names[:-2]}}  # the sandbox leaves the classifier out of its list
    flags.clear()
    ctx = replace(ctx, reported={"num_parameters": params - model.classifier.weight.numel()
                                 - model.classifier.bias.numel()})
    assert run_check("test_parameter_count", CHECKS["test_parameter_count"], claimed_fewer, ctx).passed
    assert any("classifier.weight" in flag for flag in flags)  # what it left out is still shown to the TA


def _grading_data(count: int = 40) -> GradingData:
    public = load_synthetic("val", num_images=count)
    heldout = load_synthetic("test", num_images=count)
    return GradingData(GradedSetting(), public, heldout, "held-out scenes")


def test_the_held_out_figure_alone_decides_and_a_lookup_is_reported():
    data = _grading_data()
    lookup = torch.cat([data.public.masks.clamp(max=20), torch.zeros_like(data.heldout.masks)]).to(torch.uint8)
    verdict = Verdict("segmentation_hw")
    miou, error = _score_predictions({"predictions": {"preds": lookup, "finite": True}}, data, None, verdict, [])
    assert error is None and miou["public"] > 0.99 and miou["effective"] == miou["heldout"] < 0.1
    assert any("by lookup" in flag for flag in verdict.flags)


def test_predictions_that_do_not_depend_on_the_weights_are_reported():
    data = _grading_data()
    preds = torch.cat([data.public.masks.clamp(max=20), data.heldout.masks.clamp(max=20)]).to(torch.uint8)
    compare = list(range(0, 80, 4))
    for other, suspected in ((preds[compare].clone(), True), (torch.zeros_like(preds[compare]), False)):
        verdict = Verdict("segmentation_hw")
        obs = {"predictions": {"preds": preds, "finite": True, "random_weights_preds": other}}
        _score_predictions(obs, data, None, verdict, compare)
        assert any("do not depend on its weights" in flag for flag in verdict.flags) == suspected
