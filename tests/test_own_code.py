"""The concepts assignment's own-code rule (course_lib.own_code): real use of an oracle is flagged, a local
variable that happens to share a set-up name never is (issue: a correct focal loss that wrote
``losses = ...; return losses.mean()`` scored 0)."""

import pytest

from course_lib.own_code import oracle_uses, own_code_problems

CORRECT = {  # correct code that names its own variables after the set-up's modules
    "focal loss with a local `losses`": '''
def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    losses = alpha_t * (1 - p_t) ** gamma * ce
    return losses.mean()
''',
    "ohem with a `losses` argument": '''
def ohem_keep_mask(losses, keep_fraction):
    k = max(1, int(keep_fraction * losses.numel()))
    threshold = losses.flatten().topk(k).values.min()
    return losses >= threshold
''',
    "metrics held in a local dict": '''
def iou_and_dice(confusion):
    cm = confusion.double()
    tp = cm.diag()
    metrics = {"iou": tp / (cm.sum(0) + cm.sum(1) - tp), "dice": 2 * tp / (cm.sum(0) + cm.sum(1))}
    return metrics["iou"], metrics["dice"]
''',
    "a helper closure over a local `models`": '''
def count(layers):
    models = list(layers)
    def total():
        return sum(m.numel() for m in models)
    return total()
''',
    "a comprehension and a loop variable": '''
def f(batches):
    for metrics in batches:
        pass
    return [losses for losses in batches]
''',
    "oracle names in docstrings and comments only": '''
def f(x):
    """Unlike torchvision.ops.roi_align, this uses torch alone; see course_lib.metrics for the real one."""
    return x  # losses.dice_loss would do it
''',
}

ORACLE = {  # real use of an oracle
    "import torchvision": ("import torchvision.ops\ndef f(x):\n    return torchvision.ops.roi_align(x)", {"torchvision"}),
    "from course_lib import": ("from course_lib.metrics import iou_per_class", {"course_lib"}),
    "the set-up's `metrics` module": ("def f(cm):\n    return metrics.iou_per_class(cm)", {"metrics"}),
    "the set-up's `losses` in a nested function": ("def f(x):\n    def g():\n        return losses.dice_loss(x)\n"
                                                   "    return g()", {"losses"}),
    "an alias of the set-up's module": ("m = models\ndef f():\n    return m.UNet()", {"models"}),
    "torchmetrics": ("from torchmetrics.functional import dice", {"torchmetrics"}),
    "the set-up's torchvision": ("def f(x, boxes):\n    return torchvision.ops.roi_align(x, boxes, 7)", {"torchvision"}),
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_own_variables_named_like_the_modules_are_not_flagged(name):
    assert oracle_uses(CORRECT[name]) == set()


@pytest.mark.parametrize("name", sorted(ORACLE))
def test_real_use_of_an_oracle_is_flagged(name):
    source, expected = ORACLE[name]
    assert oracle_uses(source) == expected


def test_problems_name_the_cell_and_the_rule():
    problems = own_code_problems({"t6_metrics": ORACLE["the set-up's `metrics` module"][0],
                                  "t4_losses": CORRECT["focal loss with a local `losses`"]})
    assert list(problems) == ["t6_metrics"] and "uses ['metrics']" in problems["t6_metrics"]


def test_a_cell_that_does_not_parse_uses_nothing():
    assert oracle_uses("%timeit f(x)") == set()
