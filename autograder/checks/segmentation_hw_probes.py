"""Probes of Assignment 1, run in the sandbox: they execute the student's code and only *record* what it does.

This file is loaded by the sandbox's runner; it must not import ``autograder``. ``run(namespace, spec)`` returns a
dict of plain values and tensors, each probe run on the names of its own cell and the cells above it
(``spec["cell_namespaces"]``, from the runner); every probe records an error string instead of raising, so one
broken class never hides the others. The inputs, sizes and weight seeds come from the grader's per-run challenge
(``segmentation_hw.make_challenge``), so no observation can be prepared in advance; everything returned is a claim
the grader checks against its own computation.
"""

import torch
from torch import nn


def _error(err):
    return f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"


def _need(ns, name):
    if name not in ns:
        raise NameError(f"{name} is not defined (its cell failed or is still the stub)")
    return ns[name]


# Configurations of the structure probes: (in_channels, out_channels, stride) and SegmentationModel kwargs.
BLOCK_CONFIGS = ((8, 8, 1), (8, 16, 2), (4, 12, 1), (6, 6, 2))
MODEL_CONFIGS = (dict(num_classes=21, width=8, num_blocks=1, downsample=True),
                 dict(num_classes=21, width=16, num_blocks=2, downsample=True),
                 dict(num_classes=5, width=8, num_blocks=2, downsample=False),
                 dict(num_classes=3, width=12, num_blocks=1, downsample=True))


def set_block_weights(block, seed):
    """Sets every weight and BatchNorm statistic of a ResidualBlock by a rule the grader repeats on the
    specification's block: the tensors of conv1, bn1, conv2, bn2, then the shortcut's convolutions and its
    BatchNorms (by type, so the order the student registered them in does not matter), each drawn in turn from
    one seeded generator. Two blocks built to the specification then compute the same function."""
    g = torch.Generator().manual_seed(seed)
    shortcut = getattr(block, "shortcut", None)
    leaves = list(shortcut.modules()) if isinstance(shortcut, nn.Module) else []
    modules = [getattr(block, name, None) for name in ("conv1", "bn1", "conv2", "bn2")]
    modules += [m for m in leaves if isinstance(m, nn.Conv2d)] + [m for m in leaves if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for module in modules:
            if not isinstance(module, nn.Module):
                continue
            for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
                if not tensor.dtype.is_floating_point:
                    continue
                values = torch.randn(tensor.shape, generator=g) * 0.5
                tensor.copy_(values.abs() + 0.5 if name == "running_var" else values)


def describe_module(module):
    """A short description of a submodule for the grader's messages (type and the arguments that matter)."""
    if isinstance(module, nn.Conv2d):
        return (f"Conv2d({module.in_channels}, {module.out_channels}, kernel={module.kernel_size[0]}, "
                f"stride={module.stride[0]}, padding={module.padding[0]}, bias={module.bias is not None})")
    if isinstance(module, nn.BatchNorm2d):
        return f"BatchNorm2d({module.num_features})"
    return type(module).__name__ if module is not None else "missing"


def block_parts(block):
    """Descriptions of a ResidualBlock's parts by role: conv1, bn1, conv2, bn2 and the shortcut's layers."""
    shortcut = getattr(block, "shortcut", None)
    parts = {name: describe_module(getattr(block, name, None)) for name in ("conv1", "bn1", "conv2", "bn2")}
    parts["shortcut"] = ([describe_module(m) for m in shortcut.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
                         if isinstance(shortcut, nn.Module) else "missing")
    return parts


def _view(compute):
    """One view of a probe: its tensor, or the error it raised (one failing view never hides the others)."""
    try:
        value = compute()
        return value.detach() if isinstance(value, torch.Tensor) else {"error": f"returned {type(value).__name__}"}
    except Exception as err:
        return {"error": _error(err)}


def _silence_bn2(block):
    """Zeroes the second BatchNorm's scale and shift: the main path then adds nothing, only the shortcut remains."""
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    return block


def _shapes(module):
    return {name: list(p.shape) for name, p in module.named_parameters()}


def probe_residual_block(ns, challenge):
    """The grader's per-run challenge (``challenge``: configurations, weight seeds and inputs it drew) answered by
    the student's block: outputs with the grader's weights, with bn2 silenced, the identity path and a gradient."""
    Block = _need(ns, "ResidualBlock")
    out = {"cases": []}
    for case in challenge["blocks"]:
        cin, cout, stride = case["config"]
        x = case["input"]
        torch.manual_seed(case["seed"])
        block = Block(cin, cout, stride)
        entry = {"parts": block_parts(block), "parameters": _shapes(block)}
        set_block_weights(block, seed=case["seed"])
        block.eval()
        with torch.no_grad():
            entry["output"] = _view(lambda: block(x))
            entry["silenced"] = _view(lambda: _silence_bn2(block)(x))
        out["cases"].append(entry)
    case = challenge["identity"]
    torch.manual_seed(case["seed"])
    block = Block(8, 8)
    set_block_weights(block, seed=case["seed"])
    with torch.no_grad():
        out["identity_output"] = _view(lambda: _silence_bn2(block).eval()(case["input"]))
    case = challenge["gradient"]
    torch.manual_seed(case["seed"])
    down = Block(8, 16, stride=2)

    def conv1_gradient():
        (down(case["input"]) * case["upstream"]).sum().backward()
        return down.conv1.weight.grad

    out["conv1_grad"] = _view(conv1_gradient)
    return out


def probe_segmentation_model(ns, challenge):
    """Logits, the sizes every convolution works at, a gradient, the parameter shapes at the layout's
    configurations and what the skips carry, on the grader's per-run inputs and seeds."""
    Model = _need(ns, "SegmentationModel")
    c = challenge["model"]
    out = {"logits": [], "conv_sizes": {}, "parameters": {}}
    for kwargs in MODEL_CONFIGS:
        torch.manual_seed(c["seed"])
        out["parameters"][repr(sorted(kwargs.items()))] = _shapes(Model(**kwargs))
    for case in c["logits"]:
        torch.manual_seed(c["seed"])
        model = Model(num_classes=21, width=8, num_blocks=1, downsample=case["downsample"]).eval()
        with torch.no_grad():
            out["logits"].append(_view(lambda: model(case["input"])))
    for downsample in (True, False):
        sizes = []
        torch.manual_seed(c["seed"])
        model = Model(num_classes=21, width=8, num_blocks=1, downsample=downsample)
        hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(int(o.shape[-1])))
                 for m in model.modules() if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            model(c["size_input"])
        for h in hooks:
            h.remove()
        out["conv_sizes"][str(downsample)] = sizes
    torch.manual_seed(c["seed"])
    model = Model(num_classes=21, width=8, num_blocks=1, downsample=True)

    def first_gradient():
        (model(c["gradient_input"]) * c["upstream"]).sum().backward()
        first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        return first.weight.grad if first is not None else None

    out["first_grad"] = _view(first_gradient)
    out["skips"] = _skip_trace(Model, _need(ns, "ResidualBlock"), c["seed"], c["trace_input"])
    return out


def _skip_trace(Model, Block, seed, x):
    """What the skip connections carry, traced on the grader's input ``x`` (eval mode): the first BatchNorm's output
    (the stem's, before its ReLU), the input of the last convolution (the classifier), the logits, and the input and
    output of every ResidualBlock call in order. Plain tensors: the grader decides what they show."""
    torch.manual_seed(seed)
    model = Model(num_classes=5, width=4, num_blocks=1, downsample=True).eval()
    trace = {"stem_bn": None, "head_input": None, "head_output": None, "blocks": []}

    def on_bn(module, inputs, output):
        if trace["stem_bn"] is None:
            trace["stem_bn"] = output.detach().clone()

    def on_conv(module, inputs, output):
        trace["head_input"], trace["head_output"] = inputs[0].detach().clone(), output.detach().clone()

    def on_block(module, inputs, output):
        trace["blocks"].append([inputs[0].detach().clone(), output.detach().clone()])

    hooks = [m.register_forward_hook(on_bn) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    hooks += [m.register_forward_hook(on_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(on_block) for m in model.modules() if isinstance(m, Block)]
    with torch.no_grad():
        trace["logits"] = model(x).detach().clone()
    for hook in hooks:
        hook.remove()
    return trace


def _load_submitted(ns, path):
    payload = torch.load(path, map_location="cpu", weights_only=True)
    state = payload["state_dict"] if isinstance(payload, dict) and "state_dict" in payload else payload
    kwargs = payload.get("model_kwargs", {}) if isinstance(payload, dict) else {}
    model = _need(ns, "SegmentationModel")(**kwargs)
    model.load_state_dict(state, strict=True)
    return model.eval(), kwargs


def probe_parameters(ns, spec):
    """Which of the checkpoint's tensors the student's class holds as parameters (the grader counts them itself)."""
    model, kwargs = _load_submitted(ns, spec["checkpoint"])
    return {"names": [name for name, _ in model.named_parameters()], "model_kwargs": repr(kwargs)}


def _predict(model, images, device):
    mean = torch.tensor((0.485, 0.456, 0.406), device=device).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225), device=device).view(1, 3, 1, 1)
    preds, finite, shape = [], True, None
    with torch.no_grad():
        for start in range(0, images.shape[0], 100):
            x = (images[start:start + 100].to(device).float() / 255 - mean) / std
            logits = model(x)
            shape, finite = list(logits.shape), finite and bool(torch.isfinite(logits).all())
            preds.append(logits.argmax(1).clamp(0, 255).to(torch.uint8).cpu())
    return torch.cat(preds), shape, finite


def probe_predictions(ns, spec):
    """Predictions (argmax, uint8) of the submitted checkpoint on the images it is given, and of the same class with
    the grader's random weights on the images the grader chose; masks never come here."""
    model, _ = _load_submitted(ns, spec["checkpoint"])
    device, note = _evaluation_device(spec.get("device", "cpu"))
    images = torch.load(spec["images"], weights_only=True)  # (N, 3, H, W) uint8
    preds, shape, finite = _predict(model.to(device), images, device)
    out = {"preds": preds, "logits_shape": shape, "finite": finite, "device": str(device), "device_note": note}
    if spec.get("random_weights"):
        try:
            other, _ = _load_submitted(ns, spec["random_weights"])
            out["random_weights_preds"] = _predict(other.to(device), images[spec["compare_images"]], device)[0]
        except Exception as err:  # the grader says so; the predictions above still count
            out["random_weights_error"] = _error(err)
    return out


def _evaluation_device(wanted):
    """The device the course evaluates on (``"cpu"`` or ``"cuda"``), and why it fell back to the CPU if it did."""
    if wanted != "cuda":
        return torch.device("cpu"), ""
    try:
        torch.zeros(1, device="cuda")
        return torch.device("cuda"), ""
    except Exception as err:  # no usable GPU in the sandbox: the CPU gives the same predictions, only slower
        return torch.device("cpu"), f"CUDA unusable in the sandbox ({_error(err)}); evaluated on the CPU"


PROBES = {
    "residual_block": lambda ns, spec: probe_residual_block(ns, spec["challenge"]),
    "segmentation_model": lambda ns, spec: probe_segmentation_model(ns, spec["challenge"]),
    "parameters": probe_parameters,
    "predictions": probe_predictions,
}
# The graded cell whose names each probe sees (its own and those of the cells above it: the runner's
# ``cell_namespaces``), as the check under that cell sees them in the notebook.
CELL_OF = {"residual_block": "residual_block", "segmentation_model": "segmentation_model",
           "parameters": "segmentation_model", "predictions": "segmentation_model"}


def run(namespace, spec):
    """Every probe on the namespace of its cell (``CELL_OF``; ``namespace``, every name the cells bound, where the
    runner gives no cell namespaces), but those in ``spec["skip"]`` and only those in ``spec["only"]`` when given
    (the judge runs the predictions apart: ``judge._run_probes``); ``spec["inputs"]`` holds the per-run challenge."""
    spaces = spec.pop("cell_namespaces", None) or {}
    spec = dict(spec, challenge=torch.load(spec["inputs"], weights_only=True))
    results = {}
    wanted = [name for name in PROBES if name not in spec.get("skip", ()) and name in spec.get("only", PROBES)]
    for name, probe in ((name, PROBES[name]) for name in wanted):
        if name in ("parameters", "predictions") and not spec.get("checkpoint"):
            results[name] = {"error": "no checkpoint was submitted (segmentation_hw_checkpoint.pt)"}
            continue
        try:
            torch.manual_seed(0)
            results[name] = probe(spaces.get(CELL_OF[name], namespace), spec)
        except BaseException as err:  # a student's class may raise anything, SystemExit included
            results[name] = {"error": _error(err)}
    return results
