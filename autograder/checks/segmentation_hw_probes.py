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


def probe_residual_block(ns):
    ResidualBlock = _need(ns, "ResidualBlock")
    out = {"shapes": {}, "shortcut_identity": {}}
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
    out = {"shapes": {}, "min_size": {}, "first_grad": None}
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
    return out


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
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
    return {"preds": torch.cat(preds), "logits_shape": list(logits.shape), "finite": bool(torch.isfinite(logits).all())}


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
