"""Probes of Assignment 2, run in the sandbox: call the student's functions on the grader's inputs and record
the outputs. Standalone (no autograder import); the inputs come from the grader in ``spec["inputs"]``."""

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


def t1(ns, x):
    f, pq = _need(ns, "panoptic_map"), _need(ns, "panoptic_quality")
    return {"cases": [f(c["semantic"], c["masks"], c["classes"], c["things"]) for c in x["cases"]],
            "pq": [[float(v) for v in pq(pred, truth)] for pred, truth in x["pq_cases"]]}


def t2(ns, x):
    boundary, f1 = _need(ns, "mask_boundary"), _need(ns, "boundary_f1")
    return {"boundaries": [boundary(mask) for mask in x["masks"]],
            "f1": [float(f1(case["pred_boundary"], case["true_boundary"], case["tolerance"])) for case in x["f1_cases"]]}


def t3(ns, x):
    roi, loss = _need(ns, "roi_align_one"), _need(ns, "mask_head_loss")
    return {"rois": [roi(x["feature"], box, x["output_size"], x["sampling_ratio"]) for box in x["boxes"]],
            "loss": loss(x["mask_logits"], x["labels"], x["targets"]).detach()}


def t4(ns, x):
    focal, tversky = _need(ns, "sigmoid_focal_loss"), _need(ns, "binary_tversky_loss")
    return {"focal": [focal(x["logits"], x["targets"], a, g).detach() for a, g in x["focal_params"]],
            "tversky": [tversky(x["logits"], x["targets"], a, b).detach() for a, b in x["tversky_params"]]}


def t5(ns, x):
    rf, emp = _need(ns, "receptive_field"), _need(ns, "empirical_receptive_field")
    return {"analytic": [int(rf(layers)) for layers in x["stacks"]],
            "empirical": [int(emp(_conv_stack(layers), x["size"])) for layers in x["stacks"]]}


def t6(ns, x):
    f, ap = _need(ns, "iou_and_dice"), _need(ns, "mask_ap")
    out = [f(cm) for cm in x["matrices"]]
    return {"iou": [o[0] for o in out], "dice": [o[1] for o in out],
            "ap": [float(ap(c["pred_masks"], c["scores"], c["true_masks"], c["iou_threshold"])) for c in x["ap_cases"]]}


def t7(ns, x):
    enc, stability, plausible = (_need(ns, name) for name in ("fourier_point_encoding", "stability_score",
                                                              "plausible_masks"))
    return {"encoding": enc(x["points"], x["frequencies"]),
            "stability": [stability(logits, offset) for logits, offset in x["stability_cases"]],
            "plausible": [plausible(logits, scores, stable, *thresholds)
                          for logits, scores, stable, thresholds in x["plausible_cases"]]}


def t8(ns, x):
    cov, params = _need(ns, "transposed_conv_coverage"), _need(ns, "upsampler_parameters")
    return {"coverage": [list(cov(*args)) for args in x["coverage_args"]],
            "params": [{k: int(v) for k, v in params(*args).items()} for args in x["param_args"]]}


def t9(ns, x):
    weights, ohem = _need(ns, "median_frequency_weights"), _need(ns, "ohem_keep_mask")
    return {"weights": weights(x["masks"], x["num_classes"]), "keep": ohem(x["losses"], x["keep_fraction"])}


def t10(ns, x):
    flops, attention = _need(ns, "attention_flops"), _need(ns, "reduced_attention")
    return {"flops": [int(flops(*args)) for args in x["flop_args"]],
            "attention": [attention(c["tokens"], c["height"], c["width"], c["sr_ratio"]) for c in x["attention_cases"]]}


PROBES = {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5, "t6": t6, "t7": t7, "t8": t8, "t9": t9, "t10": t10}


def run(namespace, spec):
    inputs = torch.load(spec["inputs"], weights_only=True)
    results = {}
    for name, probe in PROBES.items():
        try:
            torch.manual_seed(0)
            with torch.no_grad() if name not in ("t5",) else torch.enable_grad():
                results[name] = probe(namespace, inputs[name])
        except BaseException as err:
            results[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"}
    return results
