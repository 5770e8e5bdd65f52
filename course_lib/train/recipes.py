"""The homework's two training recipes, declared once: the notebook, the demo, the tests and the benchmarks read them.

A recipe is budgeted in epochs, never in seconds: the same seed gives the same model on a fast machine and on a
slow or busy one (``course_lib.train.loop``). ``max_seconds`` is only a safety cap that stops a hopeless run with
a message saying how long an epoch took and how long it should take.

QUICK: the synthetic default at 64×64 on a CPU while developing. FULL: PASCAL VOC 2012 (SBD ``train_aug``) at
64×64 on a GPU, for the real term.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from course_lib.train.config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """A training recipe of the homework.

    Attributes:
        name: ``"QUICK"`` or ``"FULL"``.
        train: the ``TrainConfig`` (epochs, optimiser, schedule, augmentation, loss, safety cap).
        model_kwargs: keyword arguments of the homework's ``SegmentationModel`` (``num_classes``, ``width``,
            ``num_blocks``, ``downsample``).
        data: what it trains on: ``"synthetic"`` or ``"voc"``.
        device: the device it is meant for (``"cpu"`` or ``"cuda"``); it runs anywhere, only slower.
        minutes: how long training both models takes, in words: measured, with the machine it was measured on
            (``QUICK_TIME``), or plainly an estimate. The notebook, the README and the student bundle's README quote
            this one figure (``tests/test_hw_notebook.py`` keeps them to it).
        train_gflops: GFLOP of one training image (forward and backward) of the homework's model built with
            ``model_kwargs`` at 64×64, with and without downsampling (torch's ``FlopCounterMode`` on the reference;
            ``tests/test_estimate.py`` keeps them true). ``course_lib.train.estimate`` scales a timed probe by them
            before the student's model exists.
    """

    name: str
    train: TrainConfig
    model_kwargs: dict = field(default_factory=dict)
    data: str = "synthetic"
    device: str = "cpu"
    minutes: str = ""
    train_gflops: tuple[float, float] = (0.0, 0.0)

    def with_loss(self, loss: str | None) -> "Recipe":
        """The same recipe with another loss (``None`` keeps the recipe's own)."""
        return self if loss is None else replace(self, train=replace(self.train, loss=loss))


@dataclass(frozen=True)
class MeasuredTime:
    """A recipe's training time as a benchmark measured it.

    Attributes:
        seconds: (with downsampling, without) for the whole recipe, evaluations included.
        machine: where, in words (processor, cores, load).
        source: the benchmark's result file (``tests/test_hw_notebook.py`` checks the figures against it).
    """

    seconds: tuple[float, float]
    machine: str
    source: str

    def describe(self) -> str:
        """E.g. ``"about 4.5 min for both models, 1.8 with downsampling and 2.6 without, measured on ..."``."""
        with_down, without = self.seconds
        return (f"about {(with_down + without) / 60:.1f} min for both models, {with_down / 60:.1f} with "
                f"downsampling and {without / 60:.1f} without, measured on {self.machine}")


# bench/synthetic_calibration.py on an idle machine: 110.1 s with downsampling, 157.2 s without (22 and 31 s per epoch).
QUICK_TIME = MeasuredTime((110.1, 157.2), "one thread of an idle 2-core AMD EPYC with AVX512-BF16",
                          "bench/results/synthetic_calibration_cpu.json")

# One CPU thread: the result is then the same on any core count, and a run keeps its pace when another process
# holds a core (two threads wait on each other there: 40× slower). The cap is generous (a machine 4× slower still
# finishes) and exists only to stop a run that would take an afternoon.
QUICK = Recipe(
    name="QUICK",
    # Five epochs underfit; what learns fastest per second here is many small steps at a high peak rate. Measured at
    # one thread (reference): batch 16, lr 6e-3, 5 epochs: 0.56 (seed 1: 0.52); the same at lr 8e-3: 0.45; at
    # lr 8e-3 for 4 epochs: 0.42; batch 32, lr 4e-3, 6 epochs: 0.34 (8 epochs: 0.60, but both models take 7 min).
    train=TrainConfig(num_epochs=5, batch_size=16, lr=6e-3, weight_decay=1e-4, schedule="onecycle", augment=True,
                      scale_range=(0.85, 1.25), loss="ce", num_threads=1, max_seconds=20 * 60,
                      expected_epoch_seconds=22),
    model_kwargs={"num_classes": 21, "width": 16, "num_blocks": 2, "downsample": True},
    data="synthetic",
    device="cpu",
    minutes=QUICK_TIME.describe(),
    train_gflops=(0.3051, 0.6948),
)

FULL = Recipe(
    name="FULL",
    train=TrainConfig(num_epochs=120, batch_size=64, lr=2e-3, weight_decay=5e-4, schedule="onecycle", augment=True,
                      scale_range=(0.5, 2.0), loss="ce+dice", amp=True, channels_last=True),
    model_kwargs={"num_classes": 21, "width": 48, "num_blocks": 2, "downsample": True},
    data="voc",
    device="cuda",
    minutes="not yet measured on a GPU (an estimate: 10-20 min per model on one modern GPU)",
    train_gflops=(2.6047, 6.1613),
)

RECIPES: dict[str, Recipe] = {"QUICK": QUICK, "FULL": FULL}

# The homework's success criteria on the validation mIoU, by tier name (the grader and the plots read these).
MIOU_TIERS: dict[str, float] = {"target": 0.15, "good": 0.25, "excellent": 0.35}


def get_recipe(mode: str) -> Recipe:
    """The recipe of a mode name; the error lists the valid names."""
    if mode not in RECIPES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {sorted(RECIPES)}")
    return RECIPES[mode]
