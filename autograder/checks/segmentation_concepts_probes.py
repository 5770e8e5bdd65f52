"""Probes of Assignment 2, run in the sandbox: call the student's functions on the grader's inputs and record
the outputs. Standalone (no autograder import); the inputs come from the grader in ``spec["inputs"]``.

Each topic's functions are called as its visible check calls them in the notebook: with the names of its own cell
and of the graded cells above it, the namespace the runner kept for that cell (``spec["cell_namespaces"]``, from
``sandbox_runner.run_cells``). In the runner's one namespace of every name, a later cell's top-level helper would
replace an earlier cell's helper of the same name (two cells that each define ``_iou`` would share the last one).
"""

import torch
from torch import nn


def _need(ns, name):
    if name not in ns:
        raise NameError(f"{name} is not defined (its cell failed or is still the stub)")
    return ns[name]


def _conv_stack(layers):
    convs = []
    for kernel, dilation, stride in layers:
        conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=dilation * (kernel - 1) // 2, dilation=dilation, bias=False)
        nn.init.constant_(conv.weight, 1.0)
        convs.append(conv)
    return nn.Sequential(*convs)


def _each(compute):
    """One graded function's outputs, or its error: a function that raises costs its own part only."""
    try:
        return compute()
    except Exception as err:
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"}


def t1(ns, x):
    return {"cases": _each(lambda: [_need(ns, "panoptic_map")(c["semantic"], c["masks"], c["classes"], c["things"])
                                    for c in x["cases"]]),
            "pq": _each(lambda: [[float(v) for v in _need(ns, "panoptic_quality")(pred, truth)]
                                 for pred, truth in x["pq_cases"]])}


def t2(ns, x):
    return {"boundaries": _each(lambda: [_need(ns, "mask_boundary")(mask) for mask in x["masks"]]),
            "f1": _each(lambda: [float(_need(ns, "boundary_f1")(c["pred_boundary"], c["true_boundary"], c["tolerance"]))
                                 for c in x["f1_cases"]])}


def t3(ns, x):
    return {"rois": _each(lambda: [_need(ns, "roi_align_one")(x["feature"], box, x["output_size"], x["sampling_ratio"])
                                   for box in x["boxes"]]),
            "loss": _each(lambda: _need(ns, "mask_head_loss")(x["mask_logits"], x["labels"], x["targets"]).detach())}


def t4(ns, x):
    return {"focal": _each(lambda: [_need(ns, "sigmoid_focal_loss")(x["logits"], x["targets"], a, g).detach()
                                    for a, g in x["focal_params"]]),
            "tversky": _each(lambda: [_need(ns, "binary_tversky_loss")(x["logits"], x["targets"], a, b).detach()
                                      for a, b in x["tversky_params"]])}


def t5(ns, x):
    return {"analytic": _each(lambda: [int(_need(ns, "receptive_field")(layers)) for layers in x["stacks"]]),
            "empirical": _each(lambda: [int(_need(ns, "empirical_receptive_field")(_conv_stack(layers), x["size"]))
                                        for layers in x["stacks"]])}


def t6(ns, x):
    pairs = _each(lambda: [_need(ns, "iou_and_dice")(cm) for cm in x["matrices"]])
    return {"iou_and_dice": pairs if isinstance(pairs, dict) else {"iou": [p[0] for p in pairs], "dice": [p[1] for p in pairs]},
            "ap": _each(lambda: [float(_need(ns, "mask_ap")(c["pred_masks"], c["scores"], c["true_masks"], c["iou_threshold"]))
                                 for c in x["ap_cases"]])}


def t7(ns, x):
    return {"encoding": _each(lambda: _need(ns, "fourier_point_encoding")(x["points"], x["frequencies"])),
            "stability": _each(lambda: [_need(ns, "stability_score")(logits, offset)
                                        for logits, offset in x["stability_cases"]]),
            "plausible": _each(lambda: [_need(ns, "plausible_masks")(logits, scores, stable, *thresholds)
                                        for logits, scores, stable, thresholds in x["plausible_cases"]])}


def t8(ns, x):
    return {"coverage": _each(lambda: [list(_need(ns, "transposed_conv_coverage")(*args)) for args in x["coverage_args"]]),
            "params": _each(lambda: [{k: int(v) for k, v in _need(ns, "upsampler_parameters")(*args).items()}
                                     for args in x["param_args"]])}


def t9(ns, x):
    return {"weights": _each(lambda: [_need(ns, "median_frequency_weights")(masks, num_classes)
                                      for masks, num_classes in x["weight_cases"]]),
            "keep": _each(lambda: [_need(ns, "ohem_keep_mask")(losses, fraction) for losses, fraction in x["ohem_cases"]])}


def t10(ns, x):
    return {"flops": _each(lambda: [int(_need(ns, "attention_flops")(*args)) for args in x["flop_args"]]),
            "attention": _each(lambda: [_need(ns, "reduced_attention")(c["tokens"], c["height"], c["width"], c["sr_ratio"])
                                        for c in x["attention_cases"]]),
            "depthwise": _each(lambda: [_need(ns, "depthwise_conv3x3")(image, kernel)
                                        for image, kernel in x["depthwise_cases"]])}


PROBES = {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5, "t6": t6, "t7": t7, "t8": t8, "t9": t9, "t10": t10}


def run(namespace, spec):
    """Every topic's probe on its cell's namespace (``namespace``, every name the cells bound, where the runner gives
    none for that topic); a probe that raises costs its own topic only."""
    inputs = torch.load(spec["inputs"], weights_only=True)
    spaces = {grade_id.split("_")[0]: space for grade_id, space in (spec.pop("cell_namespaces", None) or {}).items()}
    results = {}
    for name, probe in PROBES.items():
        try:
            torch.manual_seed(0)
            with torch.no_grad() if name not in ("t5",) else torch.enable_grad():
                results[name] = probe(spaces.get(name, namespace), inputs[name])
        except BaseException as err:
            results[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"}
    return results
