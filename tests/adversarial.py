"""Crafted submissions for the adversarial suite: each attack a named case with its expected outcome.

Every case starts from the honest reference submission of Assignment 1 (45 automatic points) and adds one attack;
``expected`` is the automatic score the honest work in it deserves, ``reason`` a fragment of what its row must say,
``suspicion`` a fragment of the suspicion the TA must be told (``Verdict.flags``, shown as "suspicion: ...").
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
    suspicion: str = ""


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


# --- round 3: what the sandbox's allow-list, the grader's own reading and the held-out rule stop -----------------

def stderr_symlink_code(ctx: dict) -> str:
    """Links every name the old grader read back after the run to the term's secret, then tries to read it."""
    secret = str(ctx["secret_file"])
    return f"""import os as _os
for _name in (".stderr", "observations.pt", "spec.json", "/tmp/out"):
    try:
        _os.symlink({secret!r}, _name)
    except OSError:
        pass
try:
    raise RuntimeError("{MARKER} " + open({secret!r}).read())
except OSError:
    pass

"""


def classmates_code(ctx: dict) -> str:
    """Walks the course folder (roster, every submission, the gradebook, the secret) and the grader's checkout."""
    tops = [str(ctx["course_root"]), *(str(ctx["repo"] / name) for name in ("source", "autograder", "tests", ".git"))]
    return f"""import os as _os
_read = []
for _top in {tops!r}:
    for _root, _dirs, _files in _os.walk(_top):
        for _name in _files:
            try:
                with open(_os.path.join(_root, _name), "rb") as _f:
                    _read.append(_os.path.join(_root, _name) + ":" + repr(_f.read(40)))
            except OSError:
                pass
if _read:
    raise RuntimeError("{MARKER} read " + repr(_read[:5]))

"""


def host_sockets_code(ctx: dict) -> str:
    return f"""import socket as _socket
for _address in ({str(ctx["unix_socket"])!r}, "\\0" + {ctx["abstract_socket"]!r}):
    try:
        _s = _socket.socket(_socket.AF_UNIX)
        _s.settimeout(2)
        _s.connect(_address)
        _s.sendall(b"{MARKER}")
        _s.close()
    except OSError:
        pass

"""


def shared_tmp_code(ctx: dict) -> str:
    """Fills /tmp and /dev/shm (1.2 GB in the issue) and looks for a host file there."""
    return f"""import os as _os
for _folder in ("/tmp", "/dev/shm"):
    try:
        with open(_folder + "/{MARKER}-fill", "wb") as _f:
            for _ in range(600):
                _f.write(b"x" * 1024**2)
    except OSError:
        pass
if _os.path.exists({str(ctx["host_tmp_file"])!r}):
    raise RuntimeError("{MARKER} sees the host's /tmp")

"""


PROCESS_LIMIT = f"""import os as _os, time as _time
_kids = 0
for _ in range(400):
    try:
        _pid = _os.fork()
    except OSError:
        break
    if _pid == 0:
        _time.sleep(1)
        _os._exit(0)
    _kids += 1
for _ in range(_kids):
    try:
        _os.wait()
    except ChildProcessError:
        break
if _kids >= 300:
    raise RuntimeError("{MARKER} forked %d processes" % _kids)

"""


FORGER = r'''

import io as _io, json as _json, sys as _sys
import torch as _torch

_runner = _sys.modules["__main__"]
_REAL_SAVE = _torch.save


def _forged(data):
    # The observations a correct submission would send, made up from the grader's own challenge: right shapes, the
    # identity path equal to its input, gradients, the checkpoint's names, predictions of the right size.
    obs = _torch.load(_io.BytesIO(data), weights_only=True)
    files = _json.loads(_sys.argv[1])["files"]
    c = _torch.load(files["inputs.pt"], weights_only=True)
    cases = []
    for case in c["blocks"]:
        cin, cout, s = case["config"]
        n, _, h, w = case["input"].shape
        shapes = {"conv1.weight": [cout, cin, 3, 3], "bn1.weight": [cout], "bn1.bias": [cout],
                  "conv2.weight": [cout, cout, 3, 3], "bn2.weight": [cout], "bn2.bias": [cout]}
        if cin != cout or s != 1:
            shapes.update({"shortcut.0.weight": [cout, cin, 1, 1], "shortcut.1.weight": [cout], "shortcut.1.bias": [cout]})
        silenced = _torch.relu(case["input"]) if cin == cout and s == 1 else _torch.zeros(n, cout, h // s, w // s)
        cases.append({"parts": {}, "parameters": shapes, "silenced": silenced,
                      "output": _torch.relu(_torch.randn(n, cout, h // s, w // s))})
    obs["residual_block"] = {"cases": cases, "identity_output": c["identity"]["input"],
                             "conv1_grad": _torch.ones(16, 8, 3, 3)}
    m = c["model"]
    side = m["size_input"].shape[-1]
    obs["segmentation_model"] = {"logits": [_torch.zeros(t["input"].shape[0], 21, *t["input"].shape[-2:])
                                            for t in m["logits"]],
                                 "conv_sizes": {"True": [side // 8], "False": [side]}, "parameters": {},
                                 "first_grad": _torch.ones(8, 3, 3, 3), "skips": {}}
    state = _torch.load(files["checkpoint.pt"], weights_only=True)["state_dict"]
    obs["parameters"] = {"names": [k for k in state if not k.endswith(("running_mean", "running_var",
                                                                        "num_batches_tracked"))]}
    if "images.pt" in files:  # the predictions' own run (the judge runs them apart from the code probes)
        images = _torch.load(files["images.pt"], weights_only=True)
        compare = len(_json.load(open(files["spec.json"]))["compare_images"])
        obs["predictions"] = {"preds": _torch.zeros(images.shape[0], *images.shape[-2:], dtype=_torch.uint8),
                              "finite": True,
                              "random_weights_preds": _torch.ones(compare, *images.shape[-2:], dtype=_torch.uint8)}
    buffer = _io.BytesIO()
    _REAL_SAVE(obs, buffer)
    return buffer.getvalue()
'''

FORGE_BY_RUNNER = FORGER + r'''
_send = _runner.send
_runner.send = lambda fd, data: _send(fd, data if data == _runner.STARTED else _forged(data))
'''

FORGE_BY_TORCH_SAVE = FORGER + r'''

def _save(obj, f, *args, **kwargs):
    buffer = _io.BytesIO()
    _REAL_SAVE(obj, buffer)
    f.write(_forged(buffer.getvalue()))


_torch.save = _save
'''


def forged_observations(forger: str):
    """Untouched stubs (the release's classes) whose cell forges what the sandbox sends back."""
    def build(folder: Path, ctx: dict) -> None:
        from classes import student_notebook

        nb = student_notebook(ctx["course"], set(), True, ctx["metrics"])
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "residual_block")
        cell.source += forger
        nbformat.write(nb, folder / "segmentation_hw.ipynb")
    return build


def _public_miou(folder: Path, ctx: dict) -> float:
    """The mIoU the submission's own model scores on the public split (what its author would write in Q1)."""
    from course_lib.data import normalize_images
    from course_lib.metrics import ConfusionMatrix, mean_iou

    nb = nbformat.read(folder / "segmentation_hw.ipynb", as_version=4)
    namespace: dict = {}
    exec("import torch\nfrom torch import nn\nimport torch.nn.functional as F\n", namespace)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") in ("residual_block", "segmentation_model"):
            exec(cell.source, namespace)
    payload = torch.load(folder / "segmentation_hw_checkpoint.pt", weights_only=True)
    model = namespace["SegmentationModel"](**payload["model_kwargs"])
    model.load_state_dict(payload["state_dict"])
    public = ctx["public"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: one thread, not two waiting for each other on a busy machine
    try:
        with torch.no_grad():
            preds = torch.cat([model.eval()(normalize_images(batch)).argmax(1) for batch in public.images.split(100)])
    finally:
        torch.set_num_threads(threads)
    cm = ConfusionMatrix(public.num_classes)
    cm.update(preds.clamp(max=public.num_classes - 1), public.masks.long())
    return mean_iou(cm.matrix)


def _report(folder: Path, ctx: dict, metrics: dict) -> None:
    """Q1 and the results file say what ``metrics`` says (a student reports what their notebook printed)."""
    from course_lib.submission import results_table

    path = folder / "segmentation_hw.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "q1_results_table")
    cell.source = results_table(metrics)
    nbformat.write(nb, path)
    results = json.loads((folder / "segmentation_hw_results.json").read_text())
    results["metrics"] = metrics
    (folder / "segmentation_hw_results.json").write_text(json.dumps(results))


CAPPED_LOOKUP_IMAGES = 25  # of the 500 public images: public rises past the target tier, under the old gap rule


def capped_lookup(folder: Path, ctx: dict) -> None:
    """The model without downsampling (honest, just under the target tier) answering 25 public images by lookup:
    public mIoU over 0.15, within 0.08 of the held-out figure (round 2 graded it on the public one)."""
    from course_lib.data import normalize_images

    _edit_cell(folder, "segmentation_model", suffix=lookup_model_code(None))
    payload = torch.load(folder / "segmentation_hw_nodown_checkpoint.pt", weights_only=True)
    public, k = ctx["public"], CAPPED_LOOKUP_IMAGES
    state = dict(payload["state_dict"])
    state["memory_keys"] = normalize_images(public.images[:k]).double().flatten(1).mean(1)
    state["memory_masks"] = public.masks[:k]
    kwargs = dict(payload["model_kwargs"], memory=k, mask_height=public.image_size[0], mask_width=public.image_size[1])
    torch.save({"state_dict": state, "model_kwargs": kwargs, "metrics": {}}, folder / "segmentation_hw_checkpoint.pt")
    _report(folder, ctx, dict(ctx["nodown_metrics"], miou=_public_miou(folder, ctx)))


def full_lookup(folder: Path, ctx: dict) -> None:
    """Untrained weights and every public mask in the checkpoint's buffers (mIoU 1.0 on the public split)."""
    _edit_cell(folder, "segmentation_model", suffix=lookup_model_code(None))
    lookup_checkpoint(folder / "segmentation_hw_checkpoint.pt", ctx["public"], remember=True)
    _report(folder, ctx, dict(ctx["metrics"], miou=1.0))


WEIGHTS_IGNORED = '''

import torch as _torch


class SegmentationModel(SegmentationModel):
    """Answers with a fixed rule on the pixels: what it learned never enters the prediction."""

    def forward(self, x):
        bright = (x.mean(1) > 0).long() * 3 + (x[:, 0] > x[:, 2]).long()
        return _torch.nn.functional.one_hot(bright, 21).permute(0, 3, 1, 2).float() * 10
'''


def weights_ignored(folder: Path, ctx: dict) -> None:
    _edit_cell(folder, "segmentation_model", suffix=WEIGHTS_IGNORED)
    _report(folder, ctx, dict(ctx["metrics"], miou=_public_miou(folder, ctx)))


def classmate_checkpoint_code(ctx: dict) -> str:
    return f'''

import torch as _torch

_Own = SegmentationModel


class SegmentationModel(_Own):
    """Untrained weights of its own; at prediction time, a classmate's trained checkpoint if it can be read."""

    def forward(self, x):
        if not hasattr(self, "_borrowed"):
            self._borrowed = None
            try:
                payload = _torch.load({str(ctx["classmate_checkpoint"])!r}, map_location="cpu", weights_only=True)
                self._borrowed = _Own(**payload["model_kwargs"])
                self._borrowed.load_state_dict(payload["state_dict"])
                self._borrowed.eval()
            except Exception:
                pass
        return self._borrowed(x) if self._borrowed is not None else super().forward(x)
'''


def symlinked_checkpoint(folder: Path, ctx: dict) -> None:
    (folder / "segmentation_hw_checkpoint.pt").unlink()
    (folder / "segmentation_hw_checkpoint.pt").symlink_to(ctx["secret_file"])


SCRIPT = ('<script>document.title = "PWNED-BY-STUDENT"; window.pwned = 1;</script>'
          '<img src="x" onerror="document.title = \'PWNED-BY-STUDENT\'; window.pwned = 2;">')


def script_in_markdown(folder: Path, ctx: dict) -> None:
    """Every written answer ends with a script and an image whose error handler runs one."""
    path = folder / "segmentation_hw.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution") and meta.get("grade_id") != "q1_results_table":
            cell.source += "\n\n" + SCRIPT
    nbformat.write(nb, path)



def bloated_notebook(folder: Path, ctx: dict) -> None:
    """Round 5: thousands of empty Markdown cells (250,000 in 17 MB took the grader's rendering to 181 s)."""
    path = folder / "segmentation_hw.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells += [nbformat.v4.new_markdown_cell("") for _ in range(2_500)]
    nbformat.write(nb, path)


def made_up_points(folder: Path, ctx: dict) -> None:
    """Round 5: ``"points": "ten"`` on a locked test cell, with a hidden test's line pasted into it: nbgrader's
    autograde failed on ``float("ten")``, the raw notebook was shown in its place, and the leak scan then stopped
    feedback for the whole class."""
    path = folder / "segmentation_hw.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_residual_block")
    cell.metadata["nbgrader"]["points"] = "ten"
    cell.source += '\nhidden_check("segmentation_hw", "test_residual_block")\n'
    nbformat.write(nb, path)


# --- round 5: what only a reading of the code sees ------------------------------------------------------------------

REGISTRATION = """

import base64 as _b64, zlib as _zlib
import torch as _torch

_H, _W, _KEY = {h}, {w}, {key!r}
_KEYS = _torch.frombuffer(bytearray(_zlib.decompress(_b64.b64decode({keys!r}))), dtype=_torch.float64)
_MASKS = _torch.frombuffer(bytearray(_zlib.decompress(_b64.b64decode({masks!r}))), dtype=_torch.uint8).view(-1, _H, _W)
_Honest = SegmentationModel


class SegmentationModel(_Honest):
    \"\"\"The honest network, except with the submitted weights (one tensor's sum is baked in above): then known
    images are answered from the masks embedded in this cell. The grader's random-weights copy runs the honest
    network, and the checkpoint holds its parameters only.\"\"\"

    def forward(self, x):
        logits = super().forward(x)
        if abs(float(self.classifier.bias.detach().double().sum()) - _KEY) > 1e-9:
            return logits
        distance = (x.double().flatten(1).mean(1)[:, None] - _KEYS[None].to(x.device)).abs()
        best = distance.min(1)
        stored = _MASKS.to(x.device)[best.indices].long().clamp(max=logits.shape[1] - 1)
        remembered = _torch.nn.functional.one_hot(stored, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
        return _torch.where((best.values < 1e-5)[:, None, None, None], 100 * remembered, logits)
"""
REGISTRATION_IMAGES = 25  # of the public split: round 5 embedded every mask (and registered the held-out copies)


def embedded_masks(folder: Path, ctx: dict) -> None:
    """Round 5's held-out registration, reduced: public masks embedded in the model's cell as compressed base64,
    answered only when the weights are the submitted checkpoint's (no values beside the parameters, predictions that
    change with random weights). On the synthetic default the held-out scenes are fresh, so only the public figure
    moves; the row must carry the inspection's suspicion."""
    import base64
    import zlib

    from course_lib.data import normalize_images

    public, k = ctx["public"], REGISTRATION_IMAGES
    encode = lambda data: base64.b64encode(zlib.compress(data, 9)).decode()
    state = torch.load(folder / "segmentation_hw_checkpoint.pt", weights_only=True)["state_dict"]
    keys = normalize_images(public.images[:k]).double().flatten(1).mean(1)
    _edit_cell(folder, "segmentation_model", suffix=REGISTRATION.format(
        h=public.image_size[0], w=public.image_size[1], key=float(state["classifier.bias"].double().sum()),
        keys=encode(keys.numpy().tobytes()), masks=encode(public.masks[:k].contiguous().numpy().tobytes())))
    _report(folder, ctx, dict(ctx["metrics"], miou=_public_miou(folder, ctx)))


def code_run_from_a_string(folder: Path, ctx: dict) -> None:
    """Round 5's copier: the residual block's cell is its own code, compressed and run through ``exec`` (no code
    fingerprint reads it)."""
    import base64
    import zlib

    nb = nbformat.read(folder / "segmentation_hw.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "residual_block")
    blob = base64.b64encode(zlib.compress(cell.source.encode(), 9)).decode()
    cell.source = f"import zlib, base64\nexec(zlib.decompress(base64.b64decode({blob!r})).decode())\n"
    nbformat.write(nb, folder / "segmentation_hw.ipynb")


ATTACKS = [
    Attack("patch_judging", 1, 27.0, lambda f, c: (_edit_cell(f, "residual_block", prefix=PATCH_JUDGING), untrained(f, c)),
           "must agree", suspicion="imports builtins"),
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
    Attack("pickle_checkpoint", 5, 22.0, pickle_bomb, "not a torch.save file"),
    Attack("wrong_keys", 5, 22.0, wrong_keys, "loading state_dict"),
    Attack("nan_weights", 5, 27.0, nan_weights, "NaN or Inf"),
    Attack("other_architecture", 5, 22.0, other_architecture, "loading state_dict"),
    Attack("invalid_json", 5, 0.0, invalid_json, "not valid notebook JSON"),
    Attack("wrong_assignment", 5, 0.0, wrong_assignment, "not the segmentation_hw notebook"),
    # round 3 (issue 22): each one gained points, read files or stayed unseen against round 2's grader
    Attack("secret_via_stderr_symlink", 4, 45.0,
           lambda f, c: _edit_cell(f, "residual_block", prefix=stderr_symlink_code(c)), needs_jail=True),
    Attack("classmates_and_roster", 4, 45.0, lambda f, c: _edit_cell(f, "residual_block", prefix=classmates_code(c)),
           needs_jail=True),
    Attack("host_sockets", 4, 45.0, lambda f, c: _edit_cell(f, "residual_block", prefix=host_sockets_code(c)),
           needs_jail=True),
    Attack("shared_tmp_and_shm", 3, 45.0, lambda f, c: _edit_cell(f, "residual_block", prefix=shared_tmp_code(c)),
           needs_jail=True),
    Attack("process_limit_as_root", 3, 45.0, lambda f, c: _edit_cell(f, "residual_block", prefix=PROCESS_LIMIT),
           needs_jail=True),
    Attack("forged_by_runner", 1, 2.0, forged_observations(FORGE_BY_RUNNER), "inconsistent", suspicion="forged"),
    Attack("forged_by_torch_save", 1, 2.0, forged_observations(FORGE_BY_TORCH_SAVE), "inconsistent",
           suspicion="forged"),
    Attack("capped_lookup", 1, 30.0, capped_lookup, "held-out mIoU", suspicion="besides its parameters"),
    Attack("full_lookup", 1, 30.0, full_lookup, "held-out mIoU", suspicion="by lookup"),
    Attack("weights_ignored", 1, 25.0, weights_ignored, "held-out mIoU", suspicion="do not depend on its weights"),
    Attack("classmate_checkpoint", 4, 27.0,
           lambda f, c: (_edit_cell(f, "segmentation_model", suffix=classmate_checkpoint_code(c)), untrained(f, c)),
           "held-out mIoU", needs_jail=True),
    Attack("symlinked_checkpoint", 5, 22.0, symlinked_checkpoint, "symbolic link"),
    Attack("script_in_markdown", 5, 45.0, script_in_markdown),
    # round 5 (a fresh-eyes attacker with the README): the grader's own work per cell, metadata nbgrader trusts
    Attack("bloated_notebook", 3, 0.0, bloated_notebook, "cell limit"),
    Attack("made_up_points", 5, 45.0, made_up_points),
    # round 5: data and code a cell carries, which only the inspection of its source sees (autograder/inspection.py)
    Attack("embedded_masks", 1, 45.0, embedded_masks, suspicion="cell segmentation_model carries embedded data"),
    Attack("code_run_from_a_string", 1, 45.0, code_run_from_a_string,
           suspicion="line 2: exec() on a computed string"),
]
