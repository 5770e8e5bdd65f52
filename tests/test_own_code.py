"""The concepts assignment's own-code rule (course_lib.own_code): real use of an oracle is flagged, a local
variable that happens to share a set-up name never is (issue: a correct focal loss that wrote
``losses = ...; return losses.mean()`` scored 0)."""

import importlib.util
import json
from pathlib import Path

import pytest

from autograder.sandbox import Isolation, Limits, isolation_problem, minimal_env, run_sandboxed
from course_lib.own_code import ORACLE_MODULES, SANDBOX_MODULES, oracle_uses, own_code_problems

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


# --- the rule by construction: the graded cells' sandbox has no oracle module to import ---------------------------

BYPASSES = {  # what the static rule above cannot see: imports the source never shows (a reviewer's, round 3)
    # and a package outside the rule's list that holds the exercise's reference (pycocotools: round 5)
    "t3_roi_align": '''

import importlib as _importlib


def roi_align_one(feature, box, output_size, sampling_ratio):
    ops = _importlib.import_module("torch" + "vision").ops
    boxes = torch.cat([box.new_zeros(1), box]).view(1, 5).to(feature.dtype)
    return ops.roi_align(feature[None], boxes, output_size, 1.0, sampling_ratio, aligned=True)[0]
''',
    "t4_losses": '''

import sys as _sys


def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    __import__("torch" + "vision.ops")
    return _sys.modules["torch" + "vision.ops"].sigmoid_focal_loss(logits, targets, alpha, gamma, reduction="mean")
''',
    "t6_metrics": '''

def mask_ap(pred_masks, scores, true_masks, iou_threshold):
    """AP of one class in one image at one IoU threshold, by the COCO reference itself (round 5)."""
    import contextlib, io
    import numpy as np
    from pycocotools import mask as mu
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if pred_masks.shape[0] == 0:
        return 0.0
    H, W = true_masks.shape[-2:]

    def rle(m):
        r = mu.encode(np.asfortranarray(m.numpy().astype(np.uint8)))
        r["counts"] = r["counts"].decode()
        return r

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": 1, "height": H, "width": W}], "categories": [{"id": 1}],
                      "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "segmentation": rle(m),
                                       "area": float(m.sum()), "iscrowd": 0, "bbox": list(mu.toBbox(rle(m)))}
                                      for i, m in enumerate(true_masks)]}
        gt.createIndex()
        dt = gt.loadRes([{"image_id": 1, "category_id": 1, "segmentation": rle(m), "score": float(s)}
                         for m, s in zip(pred_masks, scores)])
        ev = COCOeval(gt, dt, "segm")
        ev.params.iouThrs = np.array([float(iou_threshold)])
        ev.params.areaRng, ev.params.areaRngLbl, ev.params.maxDets = [[0, 1e10]], ["all"], [100]
        ev.evaluate(); ev.accumulate()
    return float(np.mean(ev.eval["precision"][0, :, 0, 0, 0]))
''',
}


def _submission_with_bypasses():
    """The source notebook's solutions (honest work in every topic), with ``BYPASSES`` appended to their cells."""
    import nbformat

    from autograder.judge import Submitted

    repo = Path(__file__).resolve().parents[1]
    nb = nbformat.read(repo / "source" / "segmentation_concepts" / "segmentation_concepts.ipynb", as_version=4)
    for cell in nb.cells:
        cell.source += BYPASSES.get(cell.metadata.get("nbgrader", {}).get("grade_id"), "")
    return Submitted(files={"segmentation_concepts.ipynb": nbformat.writes(nb).encode()})


def test_the_bypasses_are_invisible_to_the_static_rule_and_would_earn_points_where_the_module_exists():
    from autograder.judge import judge_files
    from inprocess import run_in_process

    assert all(oracle_uses(code) == set() for code in BYPASSES.values())
    verdict = judge_files(_submission_with_bypasses(), "segmentation_concepts", run=run_in_process)  # torchvision here
    assert {f"test_{gid}" for gid in BYPASSES} <= {g for g, r in verdict.checks.items() if r.passed}, verdict.checks


@pytest.mark.slow  # a grading run
@pytest.mark.skipif(isolation_problem() is not None, reason=f"no sandbox here: {isolation_problem()}")
def test_in_the_sandbox_the_bypasses_earn_nothing_and_the_honest_topics_everything():
    from autograder.judge import judge_files

    verdict = judge_files(_submission_with_bypasses(), "segmentation_concepts")
    failed = {g for g, r in verdict.checks.items() if not r.passed}
    assert failed == {f"test_{gid}" for gid in BYPASSES}, {g: verdict.checks[g].message for g in failed}
    assert all("ModuleNotFoundError" in verdict.checks[f"test_{gid}"].message for gid in BYPASSES)


@pytest.mark.skipif(isolation_problem() is not None, reason=f"no sandbox here: {isolation_problem()}")
def test_the_oracle_modules_are_absent_from_the_sandbox_however_they_are_looked_for():
    import glob
    import sys
    import sysconfig

    LOOKED_FOR = (*ORACLE_MODULES, "pycocotools", "scipy", "IPython")  # the rule's list, packages outside it (round 5)
    # every package folder the host has, on the path as code inside can put them (round 6: the base interpreter's)
    folders = [sysconfig.get_paths()["purelib"],
               sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})["purelib"],
               *glob.glob("/usr/lib/python3*/*-packages"), *glob.glob("/usr/local/lib/python3*/*-packages")]
    script = '''
import importlib, importlib.util, json, os, sys
manifest = json.loads(sys.argv[1])
sys.path.extend(FOLDERS)
seen = {}
for name in NAMES:
    try:
        importlib.import_module(name)
        seen[name] = "imported"
    except ModuleNotFoundError:
        seen[name] = "absent"
    seen[name + " spec"] = importlib.util.find_spec(name) is not None
    seen[name + " in sys.modules"] = name in sys.modules
import torch
site = os.path.dirname(os.path.dirname(torch.__file__))
seen["entries"] = sorted(e for e in os.listdir(site) if any(e.startswith(n) or e.startswith("__editable__." + n)
                                                          for n in NAMES))
seen["torch"] = torch.ones(2).sum().item()
os.write(manifest["out"], json.dumps(seen).encode())
'''.replace("NAMES", repr(list(LOOKED_FOR))).replace("FOLDERS", repr(folders))
    run = run_sandboxed("s.py", {"s.py": script.encode()}, Limits(wall_seconds=120),
                        Isolation(kept_modules=SANDBOX_MODULES), minimal_env())
    seen = json.loads(run.output)
    assert seen.pop("torch") == 2.0 and seen.pop("entries") == [], run.stderr_tail
    assert seen == {**{name: "absent" for name in LOOKED_FOR}, **{f"{name} spec": False for name in LOOKED_FOR},
                    **{f"{name} in sys.modules": False for name in LOOKED_FOR}}


def test_the_concepts_sandbox_holds_only_torch_numpy_and_what_torch_requires():
    from autograder.checks import get_assignment
    from autograder.sandbox import allow_list, paths_outside

    assert get_assignment("segmentation_concepts").sandbox_modules == SANDBOX_MODULES
    assert get_assignment("segmentation_hw").sandbox_modules is None
    absent = paths_outside(SANDBOX_MODULES)
    listed = allow_list(kept_modules=SANDBOX_MODULES)
    for module in (*ORACLE_MODULES, "pycocotools", "scipy", "torch", "numpy", "sympy"):
        spec = importlib.util.find_spec(module)
        if spec is None:
            continue
        place = Path(spec.submodule_search_locations[0] if spec.submodule_search_locations else spec.origin).resolve()
        outside = any(place == p or place.is_relative_to(p) for p in absent)
        # an allow-list: what the rule's list names and any other package are absent; torch, numpy and what torch
        # requires (sympy) are there
        assert outside == (module not in ("torch", "numpy", "sympy")), (module, place)
    assert not set(listed["read_only"]) & set(listed["absent"])
