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
- the same values: every tensor's magnitudes (``|value|`` as float32 bits, each value that occurs once in its
  tensor), pooled per tensor shape; a pair's share is the multiset of magnitudes both hold, over the smaller
  model's. Magnitudes in place of values, and multisets in place of whole tensors, because a copy can be changed
  without changing what it computes: a convolution feeding a BatchNorm may negate an output channel (its row, and
  the BatchNorm's weight and running mean of that channel) or permute its output channels (with the BatchNorm's
  channels and the next convolution's input channels), and one value of a tensor moved by 1 % changes every hash
  of the tensor but one value of the multiset. Two independent trainings share a bit-equal float32 magnitude by
  chance only (measured: see ``thresholds.json``). Also the whole tensors' sorted magnitudes rounded to float16
  and to bfloat16 (a copy stored in a narrower dtype);
- the weights: per weight tensor (convolutions and linear layers), the Pearson correlation of the flattened values,
  estimated from a fixed 256-dimensional count sketch of each tensor, twice: as stored, and in a canonical form
  that the sign flips and permutations above leave unchanged (``canonical``: magnitudes, output and input channels
  ordered by their norms, means per channel removed). A pair's score is the higher of the two medians over the
  tensors both models have. Tensors are aligned by shape and order of appearance, not by name, so honest code with
  other attribute names is compared too. Two independent trainings correlate near 0 in both forms (random
  initialisation, permutation symmetry); a copy fine-tuned for an epoch stays near 1 as stored, a laundered copy
  (signs, permutations, small noise) near 1 in canonical form.

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
# The canonical form has a shape every model shares (channels in order of norm), which a 256-bucket sketch turns into
# a fixed bias between honest pairs (+0.02 per tensor, measured on trained honest pairs); 1024 buckets: +0.005.
CANONICAL_SKETCH_DIM = 1024
MIN_IDENTICAL_NUMEL = 64  # a tensor this small (a bias, a BatchNorm of a few channels) is no evidence on its own
MAX_CHECKPOINT_BYTES = 200 * 1024**2  # as the judge (autograder.judge.MAX_CHECKPOINT_BYTES)
PRECISIONS = {"f16:": torch.float16, "bf16:": torch.bfloat16}  # whole tensors rounded (float32: value by value)
MAX_VALUE_OWNERS = 8  # a magnitude more students than this (and than half the class) hold is a constant, no evidence


@dataclass
class CheckpointPrint:
    """One checkpoint's summary; ``error`` says why there is none (missing, unreadable, too large)."""

    sha256: str = ""
    size: int = 0
    inner_name: str = ""
    serialization_id: str = ""
    training_run: str = ""  # "" when the checkpoint and results file record no training times
    slots: list = field(default_factory=list)  # (slot key, state-dict key, shape, dtype, numel)
    exact: dict = field(default_factory=dict)  # precision + hash of the sorted magnitudes at it → numel (f16, bf16)
    magnitudes: dict = field(default_factory=dict)  # shape → sorted uint32 float32 bits of |values| occurring once
    sketches: dict = field(default_factory=dict)  # slot key of a weight tensor → unit sketch (SKETCH_DIM,) float32
    canonical: dict = field(default_factory=dict)  # slot key → unit sketch (CANONICAL_SKETCH_DIM,) of ``canonical``
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


_SKETCH_PLANS: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}


def _sketch(values: torch.Tensor, dim: int = SKETCH_DIM) -> np.ndarray:
    """A unit vector whose dot products estimate the Pearson correlation of two tensors of the same size: the
    centred values, count-sketched (fixed buckets and signs per size) to ``dim``, then normalised."""
    x = values.detach().reshape(-1).to(torch.float64)
    x = x - x.mean()
    n = x.numel()
    if n > dim:
        if (n, dim) not in _SKETCH_PLANS:
            g = torch.Generator().manual_seed(n)
            _SKETCH_PLANS[n, dim] = (torch.randint(0, dim, (n,), generator=g),
                                     torch.randint(0, 2, (n,), generator=g).to(torch.float64) * 2 - 1)
        buckets, signs = _SKETCH_PLANS[n, dim]
        x = torch.zeros(dim, dtype=torch.float64).index_add_(0, buckets, x * signs)
    norm = float(x.norm())
    return (x / norm).to(torch.float32).numpy() if norm > 0 else np.zeros(x.numel(), dtype=np.float32)


def canonical(values: torch.Tensor) -> torch.Tensor:
    """What a weight tensor computes, up to the changes that leave a network's function as it is: the magnitudes
    (a sign flip per output channel), output channels (rows) and input channels (columns) ordered by their norms
    (a permutation of either); then every row and column scaled to the same root mean square (a few alternating
    passes) and, per kernel position, each row's and each column's mean removed, so that the ordering itself, the
    same in every model, correlates nothing (measured on trained honest pairs: a median of +0.002 to +0.011 per
    tensor, +0.010 to +0.017 without the scaling).

    Shape: (out, in, *kernel) or (out, in) → (out, in, kernel positions) float64.
    """
    w = values.detach().to(torch.float64)
    w = w.reshape(w.shape[0], w.shape[1], -1)  # (out, in, k)
    energy = w * w
    rows = torch.argsort(energy.sum((1, 2)), stable=True)
    cols = torch.argsort(energy.sum((0, 2)), stable=True)
    a = w.abs()[rows][:, cols]
    for _ in range(3):
        a = a / a.pow(2).mean((1, 2), keepdim=True).sqrt().clamp_min(1e-30)
        a = a / a.pow(2).mean((0, 2), keepdim=True).sqrt().clamp_min(1e-30)
    return a - a.mean(0, keepdim=True) - a.mean(1, keepdim=True) + a.mean((0, 1), keepdim=True)


def magnitude_bits(values: torch.Tensor) -> np.ndarray:
    """The float32 bits of the tensor's magnitudes that occur once in it (a repeated value, such as a run of zeros,
    says nothing), sorted. Shape: any → (m,) uint32."""
    bits = values.detach().to(torch.float32).abs().reshape(-1).numpy().view(np.uint32)
    unique, counts = np.unique(bits, return_counts=True)
    return unique[counts == 1]


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
            bits = magnitude_bits(values)
            fp.magnitudes[shape] = np.sort(np.concatenate([fp.magnitudes.get(shape, bits[:0]), bits]))
            for precision, dtype in PRECISIONS.items():  # a copy cast to a narrower dtype matches at that precision
                rounded = values.abs().reshape(-1).to(dtype).to(torch.float32).sort().values.numpy().tobytes()
                digest = precision + hashlib.sha256(repr(shape).encode() + rounded).hexdigest()[:20]
                fp.exact[digest] = fp.exact.get(digest, 0) + tensor.numel()
        if tensor.ndim >= 2 and tensor.numel() >= 16:
            fp.sketches[slot] = _sketch(values)
            fp.canonical[slot] = _sketch(canonical(values), CANONICAL_SKETCH_DIM)
    return fp


def _shared_magnitudes(prints: list[CheckpointPrint]) -> np.ndarray:
    """``common[i, j]``: how many magnitudes students i and j both hold, tensor shape by shape, as multisets, less
    the matches chance gives (measured as the matches one unit in the last place away, where a copy has no more
    than chance, plus three standard deviations of that count);
    one sort per shape over the whole class. A magnitude held by more than ``MAX_VALUE_OWNERS`` students and more
    than half the class is left out: a constant of the code, not of one training."""
    n = len(prints)
    common = np.zeros((2 * n, 2 * n))  # students, then the same students' magnitudes one ulp up
    crowd = max(MAX_VALUE_OWNERS, n // 2)
    for shape in {s for fp in prints for s in fp.magnitudes}:
        have = [i for i, fp in enumerate(prints) if shape in fp.magnitudes]
        if len(have) < 2:
            continue
        own = [prints[i].magnitudes[shape].astype(np.uint64) for i in have]
        bits = np.concatenate(own + [b + np.uint64(1) for b in own])
        owner = np.concatenate([np.full(len(b), i, dtype=np.uint64) for i, b in zip(have, own)]
                               + [np.full(len(b), n + i, dtype=np.uint64) for i, b in zip(have, own)])
        keys, counts = np.unique((bits << np.uint64(32)) | owner, return_counts=True)  # (magnitude, owner) rows
        value, who = keys >> np.uint64(32), (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, value[1:] != value[:-1]])  # runs of one magnitude, one row per owner
        sizes = np.diff(np.r_[starts, len(keys)])
        for m in np.unique(sizes[(sizes >= 2) & (sizes <= 2 * crowd)]):
            rows = starts[sizes == m][:, None] + np.arange(m)  # (runs, m)
            o, c = who[rows], counts[rows]
            for x in range(m):
                for y in range(x + 1, m):
                    np.add.at(common, (o[:, x], o[:, y]), np.minimum(c[:, x], c[:, y]))
    common = common + common.T
    chance = (common[:n, n:] + common[n:, :n]) / 2  # i's magnitudes against j's one ulp up, and the other way
    return np.clip(common[:n, :n] - chance - 3 * np.sqrt(chance), 0, None)  # beyond chance by 3 Poisson sigmas


def identical_share(prints: list[CheckpointPrint]) -> np.ndarray:
    """``share[i, j]``: the share of the smaller model's values (tensors of ``MIN_IDENTICAL_NUMEL`` or more) whose
    magnitude the other checkpoint holds bit for bit in a tensor of the same shape (whatever their signs and order),
    or of whole tensors whose sorted magnitudes are equal once both are cast to float16 or bfloat16 (a copy stored in
    a narrower dtype), for every pair; the highest of the three."""
    n = len(prints)
    totals = np.array([sum(len(b) for b in fp.magnitudes.values()) for fp in prints], dtype=float)
    smaller = np.minimum.outer(totals, totals)
    best = np.where(smaller > 0, _shared_magnitudes(prints) / np.maximum(smaller, 1), 0.0)
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


def _median_correlation(sketches: list[dict], min_shared: float) -> np.ndarray:
    """The median over shared slots of the sketches' dot products, one matrix product per slot over the class."""
    n = len(sketches)
    slots = sorted({s for sk in sketches for s in sk})
    if n == 0 or not slots:
        return np.zeros((n, n))
    values = np.full((len(slots), n, n), np.nan, dtype=np.float32)  # (slots, students, students)
    for k, slot in enumerate(slots):
        have = [i for i, sk in enumerate(sketches) if slot in sk]
        if len(have) < 2:
            continue
        matrix = np.stack([sketches[i][slot] for i in have])  # (students with this slot, SKETCH_DIM)
        values[k][np.ix_(have, have)] = matrix @ matrix.T
    present = ~np.isnan(values)
    shared = present.sum(axis=0)
    counts = np.array([len(sk) for sk in sketches])
    enough = shared >= np.maximum(1, min_shared * np.minimum.outer(counts, counts))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no shared tensor) give NaN
            median = np.nanmedian(values, axis=0)
    corr = np.where(enough & np.isfinite(median), median, 0.0).astype(float)
    np.fill_diagonal(corr, 0.0)
    return corr


def layer_correlation(prints: list[CheckpointPrint], min_shared: float = 0.5) -> np.ndarray:
    """``corr[i, j]``: the median, over the weight tensors both models have (same shape, same order of appearance),
    of their estimated Pearson correlation, as stored or in canonical form (``canonical``), whichever median is
    higher; 0 when they share fewer than ``min_shared`` of the smaller model's weight tensors."""
    return np.maximum(_median_correlation([fp.sketches for fp in prints], min_shared),
                      _median_correlation([fp.canonical for fp in prints], min_shared))


def per_layer(a: Path, b: Path) -> list[dict]:
    """For a pair worth showing: every tensor both have (aligned as in ``layer_correlation``), with its exact Pearson
    correlation as stored and in canonical form, whether the values are equal, bit for bit or after casting to the
    narrower dtype, and the share of its magnitudes the other tensor holds (``same_magnitudes``)."""
    from course_lib.train.checkpoint import load_checkpoint

    def slots(path: Path) -> dict:
        out, seen = {}, {}
        for key, t in load_checkpoint(path)["state_dict"].items():
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel():
                shape = tuple(t.shape)
                out[f"{'x'.join(map(str, shape))}#{seen.get(shape, 0)}"] = (key, t)
                seen[shape] = seen.get(shape, 0) + 1
        return out

    def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
        x, y = x.double().reshape(-1), y.double().reshape(-1)
        x, y = x - x.mean(), y - y.mean()
        denom = float(x.norm() * y.norm())
        return float(x @ y) / denom if denom > 0 else float("nan")

    sa, sb = slots(a), slots(b)
    rows = []
    for slot in [s for s in sa if s in sb]:
        (ka, ta), (kb, tb) = sa[slot], sb[slot]
        narrow = ta.dtype if torch.finfo(ta.dtype).bits <= torch.finfo(tb.dtype).bits else tb.dtype
        ma, mb = magnitude_bits(ta), magnitude_bits(tb)
        rows.append({"slot": slot, "key_a": ka, "key_b": kb, "numel": ta.numel(), "weight": ta.ndim >= 2,
                     "correlation": pearson(ta, tb),
                     "canonical_correlation": pearson(canonical(ta), canonical(tb)) if ta.ndim >= 2 else float("nan"),
                     "bit_identical": ta.dtype == tb.dtype and torch.equal(ta, tb),
                     "identical_after_cast": torch.equal(ta.to(narrow), tb.to(narrow)),
                     "same_magnitudes": len(np.intersect1d(ma, mb)) / max(1, min(len(ma), len(mb))),
                     "dtypes": f"{str(ta.dtype).replace('torch.', '')}/{str(tb.dtype).replace('torch.', '')}"})
    return rows
