"""A term's data and reference: packing a VOC-format tree into one file, and release's training-time estimate
against the measured time.

1. pack: builds a VOC-format tree of N photo-sized images (500x375 JPEGs of smooth random fields with shapes, palette
   PNG labels with void borders, SBD-style SegmentationClassAug), packs train_aug + val at 64x64
   (``python -m course_lib.data pack``'s code), loads it back with every checksum verified, and reports time and size
   per image, extrapolated to VOC's 10,582 + 1,449 images (raw uint8 at 64x64: 16,384 bytes per image, exactly;
   the compressed size of real photos differs from these synthetic ones).
2. estimate: ``course_lib.train.estimate.estimate_fit`` (what ``release`` says before training) against the measured
   ``fit`` of both reference models, on the synthetic default and on CamVid (when ``shared/data`` has it), with the
   recipe shortened to ``--epochs`` epochs so that the benchmark stays short (the estimate scales with epochs).

Usage: python bench/term_data.py [--parts pack,estimate] [--images 1000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from common import ROOT, print_table, write_json

from course_lib.data import DataSource, VOC_PALETTE
from course_lib.data.packed import load_packed, pack

CAMVID = ROOT.parent / "shared" / "data" / "camvid_seg96x128.npz"
VOC_IMAGES = {"train_aug": 10_582, "val": 1_449}


def voc_tree(root: Path, count: int, seed: int = 0) -> Path:
    """A VOC-format tree of ``count`` images at 500x375; a sixth of them in val, the rest SBD-style train_aug."""
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    palette = [c for rgb in VOC_PALETTE for c in rgb]
    ids = [f"2008_{i:06d}" for i in range(count)]
    for image_id in ids:
        coarse = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((500, 375), Image.BICUBIC)  # a smooth field, like a photo's background
        label = Image.new("P", (500, 375), 0)
        draw_image, draw_label = ImageDraw.Draw(image), ImageDraw.Draw(label)
        for _ in range(rng.integers(1, 4)):
            x, y = rng.integers(0, 400), rng.integers(0, 280)
            w, h = rng.integers(40, 200), rng.integers(40, 180)
            cls = int(rng.integers(1, 21))
            draw_image.ellipse((x, y, x + w, y + h), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
            draw_label.ellipse((x, y, x + w, y + h), fill=cls, outline=255, width=3)
        label.putpalette(palette)
        image.save(voc / "JPEGImages" / f"{image_id}.jpg", quality=90)
        label.save(voc / "SegmentationClassAug" / f"{image_id}.png")
    val = ids[: count // 6]
    for image_id in val:
        (voc / "SegmentationClass" / f"{image_id}.png").write_bytes((voc / "SegmentationClassAug" / f"{image_id}.png").read_bytes())
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "val.txt").write_text("\n".join(val) + "\n")
    (lists / "train.txt").write_text("")
    return root


def bench_pack(count: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp:
        tmp = Path(tmp)
        voc_tree(tmp / "voc", count)
        tree_mb = sum(p.stat().st_size for p in (tmp / "voc").rglob("*") if p.is_file()) / 1e6
        start = time.perf_counter()
        manifest = pack(DataSource("voc", tmp / "voc"), 64, tmp / "voc64.npz", log=lambda line: None)
        packed = time.perf_counter() - start
        size = (tmp / "voc64.npz").stat().st_size
        start = time.perf_counter()
        for split in manifest["splits"]:
            load_packed(tmp / "voc64.npz", split, 64, kind="voc")
        loaded = time.perf_counter() - start
    images = sum(s["count"] for s in manifest["splits"].values())
    voc_total = sum(VOC_IMAGES.values())
    return [{"images": images, "tree_MB": round(tree_mb, 1), "pack_s": round(packed, 1),
             "pack_ms_per_image": round(1000 * packed / images, 2), "file_MB": round(size / 1e6, 2),
             "bytes_per_image": round(size / images), "raw_bytes_per_image": 64 * 64 * 4,
             "load_verify_s": round(loaded, 2),
             "voc_extrapolated_pack_min": round(packed / images * voc_total / 60, 1),
             "voc_extrapolated_file_MB": round(size / images * voc_total / 1e6),
             "voc_raw_MB": round(voc_total * 64 * 64 * 4 / 1e6)}]


def bench_estimate(epochs: int) -> list[dict]:
    from autograder.reference.segmentation_hw import SegmentationModel
    from course_lib.train import fit, seed_everything
    from course_lib.train.estimate import estimate_fit
    from course_lib.train.recipes import QUICK

    sources = {"synthetic 64x64": (DataSource("synthetic"), (64, 64))}
    if CAMVID.is_file():
        sources["camvid 96x128"] = (DataSource("camvid", CAMVID), (96, 128))
    cfg = replace(QUICK.train, num_epochs=epochs, max_seconds=None, progress=False)
    rows = []
    for name, (source, size) in sources.items():
        train, val = source.load("train", size), source.load("val", size)
        for downsample in (True, False):
            kwargs = dict(QUICK.model_kwargs, num_classes=val.num_classes, downsample=downsample)
            start = time.perf_counter()
            guess = estimate_fit(SegmentationModel(**kwargs), train, val, cfg)
            probe = time.perf_counter() - start
            seed_everything(cfg.seed)
            history = fit(SegmentationModel(**kwargs), train, val, cfg, log=None)
            rows.append({"data": name, "model": "with downsampling" if downsample else "without",
                         "epochs": epochs, "estimate_s": round(guess.seconds, 1), "measured_s": round(history.total_seconds, 1),
                         "ratio": round(guess.seconds / history.total_seconds, 2), "probe_s": round(probe, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="pack,estimate")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    out = {}
    if "pack" in args.parts:
        out["pack"] = bench_pack(args.images)
        print_table("packing a VOC-format tree at 64x64 (train_aug + val)", out["pack"])
    if "estimate" in args.parts:
        out["estimate"] = bench_estimate(args.epochs)
        print_table(f"release's estimate against the measured fit (QUICK recipe, {args.epochs} epochs, one thread)",
                    out["estimate"])
    write_json("term_data", out)


if __name__ == "__main__":
    main()
