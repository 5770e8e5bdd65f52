"""``TrainConfig``: every knob of a training run in one frozen dataclass.

Change a field with ``dataclasses.replace(cfg, lr=3e-4)``; a checkpoint stores ``asdict(cfg)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class TrainConfig:
    """A training run.

    Attributes:
        num_epochs: passes over the training split; the run always does all of them (results never depend on
            how fast the machine is).
        batch_size: images per step.
        lr: peak learning rate.
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        optimizer: ``"adamw"`` or ``"sgd"`` (momentum 0.9, Nesterov).
        schedule: ``"onecycle"`` (linear warm-up, cosine down), ``"cosine"``, ``"poly"`` (power 0.9) or ``"constant"``.
        warmup_fraction: share of the run spent warming up (``onecycle``).
        loss: a name of ``course_lib.losses.LOSSES``: ``"ce"``, ``"ce+dice"``, ``"focal"``, ...
        augment: random flip + scale-and-crop on the training batches.
        scale_range: zoom range of the augmentation.
        max_seconds: a safety cap, not a budget (``None``: no cap). After each epoch the run projects its
            total time; when that exceeds the cap it stops with ``TrainingTooSlow``, saying how long an epoch
            took here and how long the recipe expects. It never shortens a run silently.
        expected_epoch_seconds: what one epoch costs on the course's reference machine (for that message).
        device: ``"auto"`` (CUDA, else MPS, else CPU) or a torch device string.
        amp: bf16 autocast on CUDA, and on a CPU with native bf16 (AVX512-BF16 or AMX); float32 elsewhere.
        channels_last: channels-last memory format (CUDA and CPU; faster convolutions on both).
        deterministic: on a CPU, ``torch.use_deterministic_algorithms(True)`` for the run: the same seed on the
            same kind of machine (same thread count and instruction set) gives the same weights bit for bit. On
            CUDA it pins cuDNN's algorithms, but bilinear upsampling's backward uses atomic adds, so GPU runs are
            reproducible only up to rounding.
        num_threads: torch's intra-op CPU threads during the run (``None``: torch's default, one per core). The
            thread count changes how sums are split, so it is part of a CPU recipe: a fixed count gives the same
            weights on any core count. One thread also keeps a run steady when another process holds a core,
            where two threads wait on each other (measured: 40× slower). Restored when the run ends.
        compile: ``torch.compile`` the model (CUDA).
        seed: seeds torch, numpy, random and the batch order.
        progress: show progress bars; ``None`` = only in an interactive session and never while grading.
        eval_every: evaluate on the validation split every this many epochs (and always at the end).
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
    """

    num_epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    warmup_fraction: float = 0.05
    loss: str = "ce"
    augment: bool = True
    scale_range: tuple[float, float] = (0.75, 1.5)
    max_seconds: float | None = None
    expected_epoch_seconds: float | None = None
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    deterministic: bool = True
    num_threads: int | None = None
    compile: bool = False
    seed: int = 0
    progress: bool | None = None
    eval_every: int = 1
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if self.num_epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"need num_epochs >= 1, batch_size >= 1, lr > 0; got {self}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be None or >= 1; got {self.num_threads}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: ['adamw', 'sgd']")
        if self.schedule not in ("onecycle", "cosine", "poly", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}; valid: ['constant', 'cosine', 'onecycle', 'poly']")

    def to_dict(self) -> dict:
        """Plain types only (lists for tuples), safe for ``torch.load(weights_only=True)`` and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Inverse of ``to_dict``; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
