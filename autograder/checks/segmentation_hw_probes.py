"""Probes of Assignment 1, run in the sandbox: they execute the student's code and only *record* what it does.

This file is copied next to the submission and run as a script; it must not import ``autograder``.
``run(namespace, spec)`` returns a dict of plain values and tensors, saved with ``torch.save``; every probe
records an error string instead of raising, so one broken class never hides the others.
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


def block_seed(cin, cout, stride):
    """The seed of ``set_block_weights`` for one configuration (the probe and the grader both use it)."""
    return cin * 100 + cout * 10 + stride


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


def probe_residual_block(ns):
    ResidualBlock = _need(ns, "ResidualBlock")
    out = {"shapes": {}, "shortcut_identity": {}, "structure": {}}
    for cin, cout, stride in BLOCK_CONFIGS:
        torch.manual_seed(0)
        block = ResidualBlock(cin, cout, stride)
        parts = block_parts(block)
        set_block_weights(block, seed=block_seed(cin, cout, stride))
        block.eval()
        x = torch.randn(2, cin, 16, 16, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            y = block(x)
        out["structure"][f"{cin}-{cout}-{stride}"] = {
            "num_parameters": sum(p.numel() for p in block.parameters()), "parts": parts,
            "input": x, "output": y.detach().float() if isinstance(y, torch.Tensor) else None}
    for n in (1, 2, 5):
        for cin, cout, stride in ((8, 8, 1), (8, 16, 2), (6, 6, 2), (4, 12, 1)):
            torch.manual_seed(0)
            block = ResidualBlock(cin, cout, stride)
            y = block(torch.randn(n, cin, 16, 16))
            key = f"{n}-{cin}-{cout}-{stride}"
            out["shapes"][key] = [list(y.shape), str(y.dtype), bool(torch.isfinite(y).all()), bool((y >= 0).all())]
            out["shortcut_identity"][f"{cin}-{cout}-{stride}"] = isinstance(getattr(block, "shortcut", None), nn.Identity)
    torch.manual_seed(1)
    block = ResidualBlock(8, 8)
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    block.eval()
    x = torch.relu(torch.randn(2, 8, 16, 16))
    out["identity_input"], out["identity_output"] = x, block(x).detach()
    torch.manual_seed(2)
    down = ResidualBlock(8, 16, stride=2)
    down(torch.randn(2, 8, 16, 16)).sum().backward()
    grad = down.conv1.weight.grad
    out["conv1_grad_norm"] = float(grad.abs().sum()) if grad is not None else 0.0
    return out


def probe_segmentation_model(ns):
    Model = _need(ns, "SegmentationModel")
    out = {"shapes": {}, "min_size": {}, "first_grad": None, "num_parameters": {}}
    for kwargs in MODEL_CONFIGS:
        model = Model(**kwargs)
        out["num_parameters"][repr(sorted(kwargs.items()))] = sum(p.numel() for p in model.parameters())
    for downsample in (True, False):
        for n in (1, 3):
            torch.manual_seed(0)
            model = Model(num_classes=21, width=8, num_blocks=1, downsample=downsample).eval()
            with torch.no_grad():
                y = model(torch.randn(n, 3, 64, 64))
            out["shapes"][f"{downsample}-{n}"] = [list(y.shape), str(y.dtype), bool(torch.isfinite(y).all())]
        sizes = []
        model = Model(num_classes=21, width=8, num_blocks=1, downsample=downsample)
        hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(int(o.shape[-1])))
                 for m in model.modules() if isinstance(m, nn.Conv2d)]
        model(torch.randn(1, 3, 64, 64))
        for h in hooks:
            h.remove()
        out["min_size"][str(downsample)] = min(sizes) if sizes else -1
    torch.manual_seed(3)
    model = Model(num_classes=21, width=8, num_blocks=1, downsample=True)
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    out["first_grad"] = float(first.weight.grad.abs().sum()) if first is not None and first.weight.grad is not None else 0.0
    out["skips"] = _skip_trace(Model, _need(ns, "ResidualBlock"))
    return out


def _skip_trace(Model, Block):
    """What the skip connections carry, traced on a 32x32 input (eval mode): the first BatchNorm's output (the stem's,
    before its ReLU), the input of the last convolution (the classifier), the logits, and the input and output of
    every ResidualBlock call in order. Plain tensors: the grader decides what they show."""
    torch.manual_seed(4)
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
        trace["logits"] = model(torch.randn(1, 3, 32, 32)).detach().clone()
    for hook in hooks:
        hook.remove()
    return trace


def _load_submitted(ns, spec):
    payload = torch.load(spec["checkpoint"], map_location="cpu", weights_only=True)
    state = payload["state_dict"] if isinstance(payload, dict) and "state_dict" in payload else payload
    kwargs = payload.get("model_kwargs", {}) if isinstance(payload, dict) else {}
    model = _need(ns, "SegmentationModel")(**kwargs)
    model.load_state_dict(state, strict=True)
    return model.eval(), kwargs


def probe_parameters(ns, spec):
    model, kwargs = _load_submitted(ns, spec)
    return {"num_parameters": sum(p.numel() for p in model.parameters()), "model_kwargs": repr(kwargs)}


def probe_predictions(ns, spec):
    """Predictions (argmax, uint8) of the submitted checkpoint on the images it is given; masks never come here."""
    model, _ = _load_submitted(ns, spec)
    device, note = _evaluation_device(spec.get("device", "cpu"))
    model.to(device)
    images = torch.load(spec["images"], weights_only=True)  # (N, 3, H, W) uint8
    mean = torch.tensor((0.485, 0.456, 0.406), device=device).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225), device=device).view(1, 3, 1, 1)
    preds = []
    with torch.no_grad():
        for start in range(0, images.shape[0], 100):
            x = (images[start:start + 100].to(device).float() / 255 - mean) / std
            logits = model(x)
            preds.append(logits.argmax(1).clamp(0, 255).to(torch.uint8).cpu())
    return {"preds": torch.cat(preds), "logits_shape": list(logits.shape), "finite": bool(torch.isfinite(logits).all()),
            "device": str(device), "device_note": note}


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
    "residual_block": lambda ns, spec: probe_residual_block(ns),
    "segmentation_model": lambda ns, spec: probe_segmentation_model(ns),
    "parameters": probe_parameters,
    "predictions": probe_predictions,
}


def run(namespace, spec):
    results = {}
    for name, probe in PROBES.items():
        if name in ("parameters", "predictions") and not spec.get("checkpoint"):
            results[name] = {"error": "no checkpoint was submitted (segmentation_hw_checkpoint.pt)"}
            continue
        try:
            torch.manual_seed(0)
            results[name] = probe(namespace, spec)
        except BaseException as err:  # a student's class may raise anything, SystemExit included
            results[name] = {"error": _error(err)}
    return results
