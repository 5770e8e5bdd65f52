"""Checkpoint evidence: what the file records, the same tensors, and weights one fine-tuning away from another's.

Per student, one pass over the checkpoint makes a compact summary (``CheckpointPrint``); pairs are then scored with
vectorised operations over the whole class (no loop over pairs for the scores):

- the file: its sha256; the name of the archive's inner folder (PyTorch names it after the file it was first saved
  to, without the extension, and renaming never changes it; ``save_submission`` writes through
  ``<checkpoint>.tmp``, so an honest checkpoint's inner folder is ``segmentation_hw_checkpoint.pt``); the archive's
  ``.data/serialization_id``, which torch (2.14) derives from the saved content (the same payload saved twice, under
  any name, gets the same id; any change, such as other training minutes, another); the training run the checkpoint
  says made it
  (the training minutes and every epoch's wall-clock seconds, which no second run repeats);
- the same tensors: hashes of every tensor's values as float32, and rounded to float16 and to bfloat16 (bit for bit,
  or a copy stored in another dtype);
- the weights: per weight tensor (convolutions and linear layers), the Pearson correlation of the flattened values,
  estimated from a fixed 256-dimensional count sketch of each tensor; the pair's score is the median over the
  tensors both models have. Tensors are aligned by shape and order of appearance, not by name, so honest code with
  other attribute names is compared too. Two independent trainings correlate near 0 (random initialisation,
  permutation symmetry); a copy fine-tuned for an epoch stays near 1.

Student code is never imported: only ``torch.load(weights_only=True)`` reads a file, as in the judge.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

SKETCH_DIM = 256
MIN_IDENTICAL_NUMEL = 64  # a tensor this small (a bias, a BatchNorm of a few channels) is no evidence on its own
MAX_CHECKPOINT_BYTES = 200 * 1024**2  # as the judge (autograder.judge.MAX_CHECKPOINT_BYTES)
PRECISIONS = {"f32:": torch.float32, "f16:": torch.float16, "bf16:": torch.bfloat16}


@dataclass
class CheckpointPrint:
    """One checkpoint's summary; ``error`` says why there is none (missing, unreadable, too large)."""

    sha256: str = ""
    size: int = 0
    inner_name: str = ""
    serialization_id: str = ""
    training_run: str = ""  # "" when the checkpoint and results file record no training times
    slots: list = field(default_factory=list)  # (slot key, state-dict key, shape, dtype, numel)
    exact: dict = field(default_factory=dict)  # precision + hash of the values at it → numel (MIN_IDENTICAL_NUMEL+)
    sketches: dict = field(default_factory=dict)  # slot key of a weight tensor → unit sketch (SKETCH_DIM,) float32
    numel: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def archive_records(path: Path) -> tuple[str, str]:
    """(inner folder name, serialization id) of a torch zip archive; ("", "") for the legacy format."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            inner = names[0].split("/", 1)[0] if names else ""
            sid = next((n for n in names if n.endswith("/.data/serialization_id")), None)
            return inner, archive.read(sid).decode("ascii", "replace").strip() if sid else ""
    except (zipfile.BadZipFile, OSError):
        return "", ""


_SKETCH_PLANS: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


def _sketch(values: torch.Tensor) -> np.ndarray:
    """A unit vector whose dot products estimate the Pearson correlation of two tensors of the same size: the
    centred values, count-sketched (fixed buckets and signs per size) to ``SKETCH_DIM``, then normalised."""
    x = values.detach().reshape(-1).to(torch.float64)
    x = x - x.mean()
    n = x.numel()
    if n > SKETCH_DIM:
        if n not in _SKETCH_PLANS:
            g = torch.Generator().manual_seed(n)
            _SKETCH_PLANS[n] = (torch.randint(0, SKETCH_DIM, (n,), generator=g),
                                torch.randint(0, 2, (n,), generator=g).to(torch.float64) * 2 - 1)
        buckets, signs = _SKETCH_PLANS[n]
        x = torch.zeros(SKETCH_DIM, dtype=torch.float64).index_add_(0, buckets, x * signs)
    norm = float(x.norm())
    return (x / norm).to(torch.float32).numpy() if norm > 0 else np.zeros(x.numel(), dtype=np.float32)


def training_run(payload: dict, results_file: Path | None) -> str:
    """A digest of the training times the submission records, or "" when it records none."""
    minutes = (payload.get("metrics") or {}).get("training_minutes")
    seconds = []
    if results_file is not None and results_file.is_file() and not results_file.is_symlink():
        try:
            history = json.loads(results_file.read_text()).get("history") or {}
            seconds = [r.get("seconds") for r in history.get("records", [])]
        except (ValueError, AttributeError, OSError):
            seconds = []
    if not isinstance(minutes, float) and not seconds:
        return ""
    return hashlib.sha256(repr((minutes, seconds)).encode()).hexdigest()[:16]


def fingerprint_checkpoint(path: Path, results_file: Path | None = None) -> CheckpointPrint:
    """The summary of one checkpoint file (never raises: a problem is the summary's ``error``)."""
    from course_lib.train.checkpoint import CheckpointError, load_checkpoint

    if not path.is_file() or path.is_symlink():
        return CheckpointPrint(error=f"no checkpoint {path.name}")
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        return CheckpointPrint(size=size, error=f"{path.name} is over {MAX_CHECKPOINT_BYTES // 1024**2} MB; not read")
    data = path.read_bytes()
    fp = CheckpointPrint(sha256=hashlib.sha256(data).hexdigest(), size=size)
    fp.inner_name, fp.serialization_id = archive_records(path)
    try:
        payload = load_checkpoint(path)
    except CheckpointError as err:
        fp.error = str(err).replace(str(path), path.name)
        return fp
    fp.training_run = training_run(payload, results_file)
    seen: dict[tuple, int] = {}
    for key, tensor in payload["state_dict"].items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        shape = tuple(tensor.shape)
        slot = f"{'x'.join(map(str, shape))}#{seen.get(shape, 0)}"
        seen[shape] = seen.get(shape, 0) + 1
        fp.slots.append((slot, key, shape, str(tensor.dtype).replace("torch.", ""), tensor.numel()))
        fp.numel += tensor.numel()
        values = tensor.detach().to(torch.float32).contiguous()
        if not torch.isfinite(values).all():
            continue
        if tensor.numel() >= MIN_IDENTICAL_NUMEL and bool(values.max() != values.min()):  # constants say nothing
            for precision, dtype in PRECISIONS.items():  # a copy cast to a narrower dtype matches at that precision
                rounded = values.to(dtype).to(torch.float32).numpy().tobytes()
                digest = precision + hashlib.sha256(repr(shape).encode() + rounded).hexdigest()[:20]
                fp.exact[digest] = fp.exact.get(digest, 0) + tensor.numel()
        if tensor.ndim >= 2 and tensor.numel() >= 16:
            fp.sketches[slot] = _sketch(values)
    return fp


def identical_share(prints: list[CheckpointPrint]) -> np.ndarray:
    """``share[i, j]``: the share of the smaller model's values (tensors of ``MIN_IDENTICAL_NUMEL`` or more) that
    the other checkpoint holds bit for bit, or equal once both are cast to float16 or bfloat16 (a copy stored in a
    narrower dtype), for every pair, through an index of tensor hashes; the highest of the three precisions."""
    n = len(prints)
    best = np.zeros((n, n))
    for precision in PRECISIONS:
        common = np.zeros((n, n))
        owners: dict[str, list[int]] = {}
        for i, fp in enumerate(prints):
            for digest in fp.exact:
                if digest.startswith(precision):
                    owners.setdefault(digest, []).append(i)
        for digest, who in owners.items():
            if len(who) > 1:
                idx = np.array(who)
                counts = np.array([prints[i].exact[digest] for i in who], dtype=float)
                common[np.ix_(idx, idx)] += np.minimum.outer(counts, counts)
        totals = np.array([sum(v for d, v in fp.exact.items() if d.startswith(precision)) for fp in prints], float)
        smaller = np.minimum.outer(totals, totals)
        best = np.maximum(best, np.where(smaller > 0, common / np.maximum(smaller, 1), 0.0))
    np.fill_diagonal(best, 0.0)
    return best


def layer_correlation(prints: list[CheckpointPrint], min_shared: float = 0.5) -> np.ndarray:
    """``corr[i, j]``: the median, over the weight tensors both models have (same shape, same order of appearance),
    of their estimated Pearson correlation; 0 when they share fewer than ``min_shared`` of the smaller model's
    weight tensors. One matrix product per tensor slot over the whole class."""
    n = len(prints)
    slots = sorted({s for fp in prints for s in fp.sketches})
    if n == 0 or not slots:
        return np.zeros((n, n))
    values = np.full((len(slots), n, n), np.nan, dtype=np.float32)  # (slots, students, students)
    for k, slot in enumerate(slots):
        have = [i for i, fp in enumerate(prints) if slot in fp.sketches]
        if len(have) < 2:
            continue
        matrix = np.stack([prints[i].sketches[slot] for i in have])  # (students with this slot, SKETCH_DIM)
        values[k][np.ix_(have, have)] = matrix @ matrix.T
    present = ~np.isnan(values)
    shared = present.sum(axis=0)
    counts = np.array([len(fp.sketches) for fp in prints])
    enough = shared >= np.maximum(1, min_shared * np.minimum.outer(counts, counts))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no shared tensor) give NaN
            median = np.nanmedian(values, axis=0)
    corr = np.where(enough & np.isfinite(median), median, 0.0).astype(float)
    np.fill_diagonal(corr, 0.0)
    return corr


def per_layer(a: Path, b: Path) -> list[dict]:
    """For a pair worth showing: every weight tensor both have (aligned as in ``layer_correlation``), with its exact
    Pearson correlation and whether the values are equal, bit for bit or after casting to the narrower dtype."""
    from course_lib.train.checkpoint import load_checkpoint

    def slots(path: Path) -> dict:
        out, seen = {}, {}
        for key, t in load_checkpoint(path)["state_dict"].items():
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel():
                shape = tuple(t.shape)
                out[f"{'x'.join(map(str, shape))}#{seen.get(shape, 0)}"] = (key, t)
                seen[shape] = seen.get(shape, 0) + 1
        return out

    sa, sb = slots(a), slots(b)
    rows = []
    for slot in [s for s in sa if s in sb]:
        (ka, ta), (kb, tb) = sa[slot], sb[slot]
        narrow = ta.dtype if torch.finfo(ta.dtype).bits <= torch.finfo(tb.dtype).bits else tb.dtype
        x, y = ta.double().reshape(-1), tb.double().reshape(-1)
        x, y = x - x.mean(), y - y.mean()
        denom = float(x.norm() * y.norm())
        rows.append({"slot": slot, "key_a": ka, "key_b": kb, "numel": ta.numel(), "weight": ta.ndim >= 2,
                     "correlation": float(x @ y) / denom if denom > 0 else float("nan"),
                     "bit_identical": ta.dtype == tb.dtype and torch.equal(ta, tb),
                     "identical_after_cast": torch.equal(ta.to(narrow), tb.to(narrow)),
                     "dtypes": f"{str(ta.dtype).replace('torch.', '')}/{str(tb.dtype).replace('torch.', '')}"})
    return rows
