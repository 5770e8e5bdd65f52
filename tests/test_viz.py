"""Every plot returns a figure and writes a PNG."""

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from course_lib.data import load_synthetic  # noqa: E402
from course_lib.train.loop import EpochRecord, History  # noqa: E402
from course_lib.viz import colorize, plot_class_iou, plot_confusion, plot_history, plot_predictions  # noqa: E402


def test_plots_write_pngs(tmp_path):
    history = History([EpochRecord(e, 1 / e, 1.2 / e, 0.1 * e, 0.5, 1e-3, float(e)) for e in range(1, 4)])
    data = load_synthetic("val", num_images=3)
    figures = [
        plot_history({"a": history, "b": history}, tmp_path / "curves.png"),
        plot_predictions(data.images, data.masks, data.masks, data.palette, save_path=tmp_path / "grid.png"),
        plot_class_iou([0.5, float("nan"), 0.2], ["a", "b", "c"], tmp_path / "iou.png"),
        plot_confusion(torch.eye(3, dtype=torch.long) * 5, ["a", "b", "c"], save_path=tmp_path / "cm.png"),
    ]
    assert all(f is not None for f in figures)
    for name in ("curves", "grid", "iou", "cm"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_colorize_maps_void_and_classes():
    rgb = colorize(torch.tensor([[0, 1, 255]]), [(0, 0, 0), (128, 0, 0)])
    assert rgb.tolist() == [[[0, 0, 0], [128, 0, 0], [224, 224, 192]]]
