"""Data: the synthetic default, the batch iterator, VOC on a tree built here, CamVid (file and folder)."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.data import (
    Augment, DataError, SYNTHETIC_CLASSES, TensorLoader, VOC_CLASSES, VOC_PALETTE, augment_batch, load_camvid,
    load_synthetic, load_voc, make_synthetic, normalize_images, resize_pair,
)
from course_lib.data.synthetic import SHAPES, TEXTURES

CAMVID_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid_seg96x128.npz"


# ---- synthetic ---------------------------------------------------------------------------------

def test_synthetic_is_deterministic_and_splits_differ():
    a, b = make_synthetic(8, seed=3), make_synthetic(8, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    train, val = load_synthetic("train", num_images=8), load_synthetic("val", num_images=8)
    assert not torch.equal(train.images, val.images)


def test_synthetic_interface_matches_voc():
    data = load_synthetic("val", num_images=64)
    assert data.images.shape == (64, 3, 64, 64) and data.images.dtype == torch.uint8
    assert data.masks.shape == (64, 64, 64) and data.masks.dtype == torch.uint8
    assert data.num_classes == 21 == len(VOC_CLASSES) and data.ignore_index == 255
    assert data.palette[:21] == tuple(VOC_PALETTE[:21])
    assert len(SYNTHETIC_CLASSES) == 1 + len(SHAPES) * len(TEXTURES)
    values = set(data.masks.unique().tolist())
    assert 255 in values and values - {255} <= set(range(21)) and len(values - {255, 0}) >= 15
    assert 0.03 < (data.masks == 255).float().mean() < 0.25  # a void band, as in VOC


def test_synthetic_void_band_separates_every_label_boundary():
    masks = make_synthetic(16, seed=5).masks.long()
    right = masks[:, :, 1:], masks[:, :, :-1]
    touching = (right[0] != right[1]) & (right[0] != 255) & (right[1] != 255)
    assert not touching.any()


def test_synthetic_scenes_have_one_to_four_objects_and_occlusion():
    data = make_synthetic(200, seed=1)
    labels_per_image = [len(set(m.unique().tolist()) - {0, 255}) for m in data.masks]
    assert min(labels_per_image) >= 1 and max(labels_per_image) <= 4 and max(labels_per_image) >= 3


def test_colour_alone_does_not_identify_the_class():
    """A nearest-mean colour classifier fitted on one sample is near chance (1/20) on the object pixels of another."""

    def object_pixels(seed):
        data = make_synthetic(300, seed=seed)
        rgb = data.images.permute(0, 2, 3, 1).reshape(-1, 3).float()
        labels = data.masks.flatten().long()
        keep = (labels > 0) & (labels < 255)
        return rgb[keep], labels[keep]

    fit_rgb, fit_labels = object_pixels(2)
    means = torch.stack([fit_rgb[fit_labels == c].mean(0) for c in range(1, 21)])  # (20, 3)
    rgb, labels = object_pixels(3)
    predicted = torch.cdist(rgb, means).argmin(1) + 1
    assert (predicted == labels).float().mean() < 0.10


def test_synthetic_generation_rate_is_reported_by_the_benchmark_not_here():
    # speed is measured in bench/synthetic_calibration.py; here only that a large chunk works
    assert len(make_synthetic(300, seed=0, chunk_size=300)) == 300


# ---- batch iterator ----------------------------------------------------------------------------

def test_loader_batches_cover_the_split_once():
    data = load_synthetic("val", num_images=10)
    loader = TensorLoader(data, batch_size=4, shuffle=True, seed=1)
    seen = torch.cat([masks for _, masks in loader])
    assert len(loader) == 3 and seen.shape[0] == 10
    assert sorted(seen.flatten(1).sum(1).tolist()) == sorted(data.masks.long().flatten(1).sum(1).tolist())
    assert len(TensorLoader(data, batch_size=4, drop_last=True)) == 2


def test_identity_augment_is_exact_and_flip_is_a_flip():
    data = load_synthetic("val", num_images=4)
    images, masks = normalize_images(data.images), data.masks.long()
    same = augment_batch(images, masks, Augment(hflip=0.0, scale=(1.0, 1.0), translate=0.0), 255)
    assert torch.allclose(same[0], images, atol=1e-5) and torch.equal(same[1], masks)
    flipped = augment_batch(images, masks, Augment(hflip=1.0, scale=(1.0, 1.0), translate=0.0), 255)
    assert torch.allclose(flipped[0], images.flip(-1), atol=1e-5) and torch.equal(flipped[1], masks.flip(-1))


def test_zoom_out_pads_masks_with_void_and_keeps_labels():
    data = load_synthetic("val", num_images=8)
    images, masks = augment_batch(normalize_images(data.images), data.masks.long(),
                                  Augment(hflip=0.5, scale=(0.5, 0.6), translate=0.1), 255,
                                  torch.Generator().manual_seed(0))
    assert (masks[:, 0, :] == 255).all() and (masks[:, :, 0] == 255).all()
    assert set(masks.unique().tolist()) <= set(data.masks.unique().tolist()) | {255}
    assert images.shape == (8, 3, 64, 64)


# ---- VOC on a tree built here ------------------------------------------------------------------

def build_voc_tree(root: Path, ids_train=("2007_000001", "2007_000002", "2007_000003"),
                   ids_val=("2007_000010", "2007_000011"), aug_ids=("2008_000100",)) -> Path:
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    palette = [c for rgb in VOC_PALETTE for c in rgb]
    for k, image_id in enumerate((*ids_train, *ids_val, *aug_ids)):
        h, w = 90 + 10 * k, 120
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(voc / "JPEGImages" / f"{image_id}.jpg")
        label = np.zeros((h, w), dtype=np.uint8)
        label[20:60, 30:90] = 1 + k % 20
        label[18:20, 30:90] = 255  # a void border, as VOC draws them
        png = Image.fromarray(label, mode="P")
        png.putpalette(palette)
        target = "SegmentationClassAug" if image_id in aug_ids else "SegmentationClass"
        png.save(voc / target / f"{image_id}.png")
        if image_id not in aug_ids:
            png.save(voc / "SegmentationClassAug" / f"{image_id}.png")
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("\n".join(ids_train) + "\n")
    (lists / "val.txt").write_text("\n".join(ids_val) + "\n")
    (lists / "trainval.txt").write_text("\n".join((*ids_train, *ids_val)) + "\n")
    return voc


def test_voc_loads_resizes_and_keeps_void(tmp_path):
    build_voc_tree(tmp_path / "data")
    data = load_voc(tmp_path / "data", "train", size=64, cache_dir=tmp_path / "cache")
    assert data.images.shape == (3, 3, 64, 64) and data.masks.shape == (3, 64, 64)
    assert data.class_names == VOC_CLASSES and data.num_classes == 21
    assert set(data.masks.unique().tolist()) == {0, 1, 2, 3, 255}
    val = load_voc(tmp_path / "data", "val", size=32, cache_dir=tmp_path / "cache")
    assert val.images.shape == (2, 3, 32, 32)


def test_voc_train_aug_excludes_val(tmp_path):
    build_voc_tree(tmp_path / "data")
    aug = load_voc(tmp_path / "data", "train_aug", size=32, cache_dir="")
    assert len(aug) == 4  # 3 train + 1 SBD-only, the 2 val ids left out


def test_voc_cache_is_used_then_invalidated(tmp_path, monkeypatch):
    voc = build_voc_tree(tmp_path / "data")
    cache = tmp_path / "cache"
    first = load_voc(tmp_path / "data", "train", cache_dir=cache)
    files = list(cache.glob("*.pt"))
    assert len(files) == 1
    with monkeypatch.context() as patch:  # a cache hit decodes no image: opening one would raise here
        patch.setattr(Image, "open", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded an image")))
        second = load_voc(tmp_path / "data", "train", cache_dir=cache)
    assert torch.equal(first.images, second.images) and torch.equal(first.masks, second.masks)
    # a changed source file → a new fingerprint, the stale file is replaced
    label = voc / "SegmentationClass" / "2007_000001.png"
    img = np.array(Image.open(label))
    img[0:5, 0:5] = 7
    png = Image.fromarray(img, mode="P")
    png.putpalette([c for rgb in VOC_PALETTE for c in rgb])
    png.save(label)
    os.utime(label, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    third = load_voc(tmp_path / "data", "train", cache_dir=cache)
    assert [f.name for f in cache.glob("*.pt")] != [f.name for f in files] and len(list(cache.glob("*.pt"))) == 1
    assert (third.masks[0] == 7).any()
    load_voc(tmp_path / "data", "train", size=32, cache_dir=cache)  # another size: its own file
    assert len(list(cache.glob("*.pt"))) == 2


def test_voc_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"VOCdevkit.*python -m course_lib.data fetch voc .*packed file.*synthetic"):
        load_voc(tmp_path / "nowhere")


def test_voc_corrupt_image_names_the_file(tmp_path):
    voc = build_voc_tree(tmp_path / "data")
    (voc / "JPEGImages" / "2007_000002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="2007_000002.jpg"):
        load_voc(tmp_path / "data", "train", cache_dir="")


def test_voc_listed_but_missing_file_is_named(tmp_path):
    voc = build_voc_tree(tmp_path / "data")
    (voc / "SegmentationClass" / "2007_000003.png").unlink()
    with pytest.raises(DataError, match="2007_000003.png"):
        load_voc(tmp_path / "data", "train", cache_dir=tmp_path / "cache")


def test_voc_unknown_split():
    with pytest.raises(ValueError, match="valid splits"):
        load_voc(".", "test")


def test_resize_pair_keeps_mask_values():
    image = torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8)
    mask = torch.randint(0, 3, (50, 70), dtype=torch.uint8)
    mask[:, :5] = 255
    out_image, out_mask = resize_pair(image, mask, 32)
    assert out_image.shape == (3, 32, 32) and out_mask.shape == (32, 32)
    assert set(out_mask.unique().tolist()) <= {0, 1, 2, 255}


# ---- CamVid ------------------------------------------------------------------------------------

def test_camvid_folder_layout(tmp_path):
    for split in ("train", "val", "test"):
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        for i in range(2):
            Image.fromarray(np.full((36, 48, 3), 40 * i, dtype=np.uint8)).save(tmp_path / split / f"f{i}.png")
            Image.fromarray(np.array([[0, 11], [10, 3]], dtype=np.uint8).repeat(18, 0).repeat(24, 1)).save(
                tmp_path / f"{split}annot" / f"f{i}.png")
    data = load_camvid(tmp_path, "val")
    assert data.images.shape == (2, 3, 36, 48) and data.num_classes == 11
    assert set(data.masks.unique().tolist()) == {0, 3, 10, 255}
    assert load_camvid(tmp_path, "test", size=16).images.shape == (2, 3, 16, 16)


def test_camvid_missing_path_says_what_to_pass(tmp_path):
    with pytest.raises(DataError, match="camvid_seg96x128.npz"):
        load_camvid(tmp_path / "absent.npz")


@pytest.mark.skipif(not CAMVID_NPZ.is_file(), reason="shared/data/camvid_seg96x128.npz is not on this machine")
def test_camvid_npz_real_photos():
    train, val = load_camvid(CAMVID_NPZ, "train"), load_camvid(CAMVID_NPZ, "val", size=64)
    assert train.images.shape == (367, 3, 96, 128) and val.images.shape == (101, 3, 64, 64)
    assert set(train.masks.unique().tolist()) == set(range(11)) | {255}
