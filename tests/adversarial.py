"""Crafted submissions for the adversarial suite: each attack a named case with its expected outcome.

Every case starts from the honest reference submission of Assignment 1 (45 automatic points) and adds one attack;
``expected`` is the automatic score the honest work in it deserves, ``reason`` a fragment of what its row must say.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import torch

MARKER = "PWNED-BY-STUDENT"


@dataclass
class Attack:
    name: str
    threat: int  # the threat group: 1 judging, 2 ending/hiding, 3 resources, 4 reaching, 5 artefacts
    expected: float
    build: Callable[[Path, dict], None]  # (submission folder, context) -> edits the folder in place
    reason: str = ""
    assignment: str = "segmentation_hw"
    needs_jail: bool = False


def _edit_cell(folder: Path, grade_id: str, prefix: str = "", suffix: str = "", nb_name="segmentation_hw.ipynb"):
    path = folder / nb_name
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source = prefix + cell.source + suffix
    nbformat.write(nb, path)


def _save_state(folder: Path, state: dict, kwargs: dict) -> None:
    payload = torch.load(folder / "segmentation_hw_checkpoint.pt", weights_only=True)
    payload["state_dict"], payload["model_kwargs"] = state, kwargs
    torch.save(payload, folder / "segmentation_hw_checkpoint.pt")


PATCH_JUDGING = '''import builtins, torch
import course_lib.metrics as _m, course_lib.train as _t
torch.allclose = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)
builtins.abs = lambda x: 0
_m.mean_iou = lambda cm: 1.0
_t.evaluate = lambda *a, **k: type("E", (), {"miou": 1.0, "pixel_accuracy": 1.0, "iou_per_class": [1.0] * 21})()

class AlwaysEqual:
    def __eq__(self, other):
        return True
    def __ge__(self, other):
        return True

'''


def untrained(folder: Path, ctx: dict) -> None:
    from autograder.reference.segmentation_hw import SegmentationModel

    payload = torch.load(folder / "segmentation_hw_checkpoint.pt", weights_only=True)
    torch.manual_seed(0)
    _save_state(folder, SegmentationModel(**payload["model_kwargs"]).state_dict(), payload["model_kwargs"])


def read_secrets_code(ctx: dict) -> str:
    targets = [str(p) for p in ctx["secret_files"]]
    return f'''import os as _os
_leaked = []
for _path in {targets!r}:
    try:
        with open(_path, "rb") as _f:
            _leaked.append(_path + ":" + str(len(_f.read(64))))
    except Exception:
        pass
for _path in {[str(p) for p in ctx["secret_dirs"]]!r}:
    try:
        _leaked += [_path + "/" + n for n in _os.listdir(_path)][:3]
    except Exception:
        pass
if _leaked:
    raise RuntimeError("{MARKER} read " + repr(_leaked))

'''


def write_secrets_code(ctx: dict) -> str:
    return f'''import os as _os, shutil as _sh
for _path in {[str(p) for p in ctx["secret_files"]]!r}:
    try:
        with open(_path, "w") as _f:
            _f.write("{MARKER}")
    except Exception:
        pass
for _path in {[str(p) for p in ctx["secret_dirs"]]!r}:
    try:
        _sh.rmtree(_path)
    except Exception:
        pass

'''


def network_code(ctx: dict) -> str:
    return f'''import socket as _socket
for _ in range(3):
    try:
        _s = _socket.create_connection(("127.0.0.1", {ctx["port"]}), timeout=2)
        _s.sendall(b"{MARKER}")
        _s.close()
    except OSError:
        pass

'''


BACKGROUND = f'''import subprocess as _sp, sys as _sys
_sp.Popen([_sys.executable, "-c", "import time\\nwhile True: time.sleep(1)  # {MARKER}"], start_new_session=True)
_sp.Popen(["sleep", "987"], start_new_session=True)

'''


class Evil:
    def __reduce__(self):
        return (exec, (f"open('/tmp/{MARKER}', 'w').write('x')",))


def pickle_bomb(folder: Path, ctx: dict) -> None:
    with open(folder / "segmentation_hw_checkpoint.pt", "wb") as f:
        pickle.dump({"state_dict": Evil(), "model_kwargs": {}}, f)


def wrong_keys(folder: Path, ctx: dict) -> None:
    payload = torch.load(folder / "segmentation_hw_checkpoint.pt", weights_only=True)
    _save_state(folder, {f"renamed.{k}": v for k, v in payload["state_dict"].items()}, payload["model_kwargs"])


def nan_weights(folder: Path, ctx: dict) -> None:
    payload = torch.load(folder / "segmentation_hw_checkpoint.pt", weights_only=True)
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    _save_state(folder, state, payload["model_kwargs"])


def other_architecture(folder: Path, ctx: dict) -> None:
    from course_lib.models import build_model

    payload = torch.load(folder / "segmentation_hw_checkpoint.pt", weights_only=True)
    _save_state(folder, build_model("fcn").state_dict(), payload["model_kwargs"])


def invalid_json(folder: Path, ctx: dict) -> None:
    (folder / "segmentation_hw.ipynb").write_text('{"cells": [ this is not json')


def wrong_assignment(folder: Path, ctx: dict) -> None:
    shutil.copy(ctx["concepts_release"], folder / "segmentation_hw.ipynb")


def metadata_tamper(folder: Path, ctx: dict) -> None:
    path = folder / "segmentation_hw.ipynb"
    nb = nbformat.read(path, as_version=4)
    ids = lambda c: c.metadata.get("nbgrader", {}).get("grade_id")
    copy = nbformat.from_dict(json.loads(json.dumps(next(c for c in nb.cells if ids(c) == "test_residual_block"))))
    copy.id = "copied-test-cell"
    nb.cells.append(copy)
    for cell in nb.cells:
        if ids(cell) == "test_segmentation_model":
            cell.metadata["nbgrader"]["grade_id"] = "test_renamed"
            cell.metadata["nbgrader"]["points"] = 100
        if ids(cell) == "test_miou_good":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="All tests passed!\n")]
    nb.cells = [c for c in nb.cells if ids(c) != "test_miou_excellent"]
    nbformat.write(nb, path)


def huge_file(folder: Path, ctx: dict) -> None:
    with open(folder / "huge_dataset.bin", "wb") as f:
        f.truncate(300 * 1024**2)  # sparse: 300 MB on paper


def always_equal_concepts(folder: Path, ctx: dict) -> None:
    _edit_cell(folder, "t10_segformer", suffix='''

class _AlwaysEqual(int):
    def __eq__(self, other):
        return True

_real_count = attention_flops
def attention_flops(*args):
    return _AlwaysEqual(0)
''', nb_name="segmentation_concepts.ipynb")


LOOKUP = '''

import torch as _torch

_HonestModel = SegmentationModel


class SegmentationModel(_HonestModel):
    """The honest network, whose answers are replaced by remembered validation masks wherever an image is known."""

    READ_FROM = {read_from!r}  # a course_lib data string read at grading time, or None: the buffers below

    def __init__(self, *args, memory=0, mask_height=64, mask_width=64, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("memory_keys", _torch.zeros(memory, dtype=_torch.float64))
        self.register_buffer("memory_masks", _torch.zeros(memory, mask_height, mask_width, dtype=_torch.uint8))

    def _table(self, x):
        if self.READ_FROM is None:
            return self.memory_keys, self.memory_masks
        if not hasattr(self, "_read"):
            try:
                from course_lib.data import DataSource, normalize_images
                val = DataSource.parse(self.READ_FROM).load("val", tuple(x.shape[-2:]))
                self._read = normalize_images(val.images).double().flatten(1).mean(1), val.masks
            except Exception:  # the data is out of reach: answer honestly
                self._read = self.memory_keys[:0], self.memory_masks[:0]
        return self._read

    def forward(self, x):
        logits = super().forward(x)
        keys, masks = self._table(x)
        if len(keys):
            distance = (x.double().flatten(1).mean(1)[:, None] - keys[None].to(x.device)).abs()
            best = distance.min(1)
            stored = masks.to(x.device)[best.indices].long().clamp(max=logits.shape[1] - 1)
            remembered = _torch.nn.functional.one_hot(stored, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
            logits = _torch.where((best.values < 1e-5)[:, None, None, None], 100 * remembered, logits)
        return logits
'''


def lookup_model_code(read_from: str | None) -> str:
    """Code appended to an honest SegmentationModel cell: a subclass that answers known images by lookup, from
    buffers (``read_from=None``) or from the data read at grading time (a ``course_lib`` data string)."""
    return LOOKUP.format(read_from=read_from)


def lookup_checkpoint(path: Path, public, remember: bool) -> None:
    """An untrained checkpoint of the lookup model (QUICK's kwargs, ``public``'s classes), holding ``public``'s
    normalised-image keys and masks in its buffers when ``remember``."""
    from autograder.reference.segmentation_hw import SegmentationModel
    from course_lib.data import normalize_images
    from course_lib.train.recipes import QUICK

    kwargs = dict(QUICK.model_kwargs, num_classes=public.num_classes)
    torch.manual_seed(0)
    state = SegmentationModel(**kwargs).state_dict()
    memory = len(public) if remember else 0
    state["memory_keys"] = normalize_images(public.images).double().flatten(1).mean(1)[:memory]
    state["memory_masks"] = public.masks[:memory]
    kwargs.update(memory=memory, mask_height=public.image_size[0], mask_width=public.image_size[1])
    torch.save({"state_dict": state, "model_kwargs": kwargs, "metrics": {}}, path)


ATTACKS = [
    Attack("patch_judging", 1, 27.0, lambda f, c: (_edit_cell(f, "residual_block", prefix=PATCH_JUDGING), untrained(f, c)),
           "must agree"),
    Attack("always_equal", 1, 60.0, always_equal_concepts, "attention_flops", assignment="segmentation_concepts"),
    Attack("sys_exit", 2, 45.0, lambda f, c: _edit_cell(f, "residual_block", suffix="\nimport sys\nsys.exit(0)\n")),
    Attack("keyboard_interrupt", 2, 45.0, lambda f, c: _edit_cell(f, "residual_block", suffix="\nraise KeyboardInterrupt\n")),
    Attack("os_exit", 2, 2.0, lambda f, c: _edit_cell(f, "segmentation_model", suffix="\nimport os\nos._exit(0)\n"),
           "ended the grading process"),
    Attack("kill_own_kernel", 2, 2.0,
           lambda f, c: _edit_cell(f, "segmentation_model", suffix="\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"),
           "ended the grading process"),
    Attack("metadata_tamper", 2, 45.0, metadata_tamper, "duplicated ids"),
    Attack("infinite_loop", 3, 2.0, lambda f, c: _edit_cell(f, "residual_block", prefix="while True:\n    pass\n\n"),
           "limit"),
    Attack("memory_bomb", 3, 45.0, lambda f, c: _edit_cell(f, "segmentation_model", suffix="\n_bomb = bytearray(64 * 1024**3)\n")),
    Attack("gigantic_output", 3, 45.0, lambda f, c: _edit_cell(f, "residual_block", suffix="\nprint('x' * 50_000_000)\n")),
    Attack("huge_file", 3, 45.0, huge_file, "over 100 MB and was left out"),
    Attack("background_processes", 3, 45.0, lambda f, c: _edit_cell(f, "residual_block", prefix=BACKGROUND)),
    Attack("read_secrets", 4, 45.0, lambda f, c: _edit_cell(f, "residual_block", prefix=read_secrets_code(c)), needs_jail=True),
    Attack("write_secrets", 4, 45.0, lambda f, c: _edit_cell(f, "residual_block", prefix=write_secrets_code(c)), needs_jail=True),
    Attack("network", 4, 45.0, lambda f, c: _edit_cell(f, "residual_block", prefix=network_code(c)), needs_jail=True),
    Attack("pickle_checkpoint", 5, 22.0, pickle_bomb, "Weights only load failed"),
    Attack("wrong_keys", 5, 22.0, wrong_keys, "loading state_dict"),
    Attack("nan_weights", 5, 27.0, nan_weights, "NaN or Inf"),
    Attack("other_architecture", 5, 22.0, other_architecture, "loading state_dict"),
    Attack("invalid_json", 5, 0.0, invalid_json, "not valid notebook JSON"),
    Attack("wrong_assignment", 5, 0.0, wrong_assignment, "not the segmentation_hw notebook"),
]
