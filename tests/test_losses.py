"""Losses against torch (the oracle) and hand-computed values; all-ignore batches stay finite."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.losses import (
    LOSSES, build_loss, ce_dice_loss, cross_entropy, dice_loss, focal_loss, ohem_cross_entropy, tversky_loss,
)


def batch(seed=0, n=2, c=4, size=6):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, size, size, generator=g, requires_grad=True)
    target = torch.randint(0, c, (n, size, size), generator=g)
    target[:, 0, :] = 255
    return logits, target


def test_cross_entropy_is_torch_cross_entropy():
    logits, target = batch()
    assert torch.allclose(cross_entropy(logits, target), F.cross_entropy(logits, target, ignore_index=255))


def test_focal_with_gamma_zero_is_cross_entropy_and_downweights_easy_pixels():
    logits, target = batch(1)
    assert torch.allclose(focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target, ignore_index=255))
    assert focal_loss(logits, target, gamma=2.0) < focal_loss(logits, target, gamma=0.0)


def test_focal_hand_computed_one_pixel():
    logits = torch.tensor([[[[2.0]], [[0.0]]]])  # (1, 2, 1, 1)
    target = torch.tensor([[[0]]])
    p = torch.softmax(torch.tensor([2.0, 0.0]), 0)[0]
    expected = -0.25 * (1 - p) ** 2 * torch.log(p)
    assert torch.allclose(focal_loss(logits, target, gamma=2.0, alpha=0.25), expected)
    per_class = focal_loss(logits, target, gamma=2.0, alpha=torch.tensor([0.25, 0.75]))
    assert torch.allclose(per_class, expected)


def test_dice_hand_computed_with_confident_logits():
    target = torch.tensor([[[0, 0, 1, 1]]])
    logits = torch.full((1, 2, 1, 4), -20.0)
    logits[0, 0, 0, :3] = 20.0  # predicts class 0 on 3 pixels
    logits[0, 1, 0, 3] = 20.0
    # class 0: tp 2, fp 1, fn 0 → dice 4/5; class 1: tp 1, fp 0, fn 1 → dice 2/3 (eps = 0)
    expected = 1 - (4 / 5 + 2 / 3) / 2
    assert dice_loss(logits, target, eps=0.0).item() == pytest.approx(expected, abs=1e-6)



def test_dice_smoothing_is_two_eps_in_the_dice_form_as_documented():
    target = torch.tensor([[[0, 0, 1, 1]]])
    logits = torch.full((1, 2, 1, 4), -20.0)
    logits[0, 0, 0, :3] = 20.0
    logits[0, 1, 0, 3] = 20.0
    eps = 1.0  # class 0: tp 2, fp 1, fn 0; class 1: tp 1, fp 0, fn 1
    dice = [(2 * 2 + 2 * eps) / (2 * 2 + 1 + 0 + 2 * eps), (2 * 1 + 2 * eps) / (2 * 1 + 0 + 1 + 2 * eps)]
    assert dice_loss(logits, target, eps=eps).item() == pytest.approx(1 - sum(dice) / 2, abs=1e-6)
    assert "2·eps" in dice_loss.__doc__


def test_tversky_half_half_is_dice_and_beta_punishes_misses():
    logits, target = batch(2)
    assert torch.allclose(tversky_loss(logits, target, 0.5, 0.5), dice_loss(logits, target))
    # a prediction that misses the foreground: β > α makes it cost more
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, :2, :2] = 1
    logits = torch.zeros(1, 2, 8, 8)
    logits[:, 0] = 3.0
    missed_fn_heavy = tversky_loss(logits, target, alpha=0.3, beta=0.7)
    missed_fp_heavy = tversky_loss(logits, target, alpha=0.7, beta=0.3)
    assert missed_fn_heavy > missed_fp_heavy


def test_focal_tversky_gamma_changes_loss():
    logits, target = batch(3)
    assert not torch.allclose(tversky_loss(logits, target, gamma=0.75), tversky_loss(logits, target, gamma=1.0))


def test_absent_class_policy():
    target = torch.zeros(1, 4, 4, dtype=torch.long)  # only class 0 present
    logits = torch.zeros(1, 3, 4, 4)
    skip = dice_loss(logits, target, absent="skip")
    include = dice_loss(logits, target, absent="include")
    assert include > skip  # absent classes with predicted mass add loss when included
    with pytest.raises(ValueError, match="absent"):
        dice_loss(logits, target, absent="bogus")


def test_ohem_keeps_hardest_pixels():
    logits, target = batch(4)
    full = ohem_cross_entropy(logits, target, keep_fraction=1.0)
    assert torch.allclose(full, F.cross_entropy(logits, target, ignore_index=255))
    pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none")[target != 255]
    k = round(0.25 * pixel.numel())
    assert torch.allclose(ohem_cross_entropy(logits, target, keep_fraction=0.25), pixel.topk(k).values.mean())


def test_ce_dice_is_the_sum():
    logits, target = batch(5)
    assert torch.allclose(ce_dice_loss(logits, target), cross_entropy(logits, target) + dice_loss(logits, target))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_all_ignore_batch_gives_finite_zero_gradients(name):
    logits = torch.randn(2, 4, 5, 5, requires_grad=True)
    target = torch.full((2, 5, 5), 255)
    loss = build_loss(name)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == 0.0
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_decreases_when_logits_move_towards_target(name):
    logits, target = batch(6)
    good = F.one_hot(target.clamp(max=3), 4).permute(0, 3, 1, 2).float() * 6
    loss = build_loss(name)
    assert loss(good, target) < loss(logits.detach(), target)


def test_build_loss_lists_valid_names():
    with pytest.raises(ValueError, match="valid names"):
        build_loss("hinge")
