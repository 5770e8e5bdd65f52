"""One packed file per term: packing a VOC-format tree (and CamVid) and loading the file gives the source's tensors
bit for bit; a file cut short or changed gets an error that names the problem and what to do."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.data import DataError, DataSource, data_record, load_camvid, load_voc
from course_lib.data.__main__ import main as data_cli
from course_lib.data.packed import load_packed, pack, read_manifest
from test_data import build_voc_tree

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid_seg96x128.npz"


@pytest.fixture
def packed_voc(tmp_path):
    build_voc_tree(tmp_path / "tree")
    out = tmp_path / "voc32.npz"
    manifest = pack(DataSource("voc", tmp_path / "tree"), 32, out, log=lambda line: None)
    return tmp_path / "tree", out, manifest


def same(a, b) -> bool:
    return (torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks) and a.name == b.name
            and a.class_names == b.class_names and a.palette == b.palette and a.ignore_index == b.ignore_index)


def test_a_packed_voc_tree_loads_bit_for_bit_as_the_tree_does(packed_voc):
    tree, out, manifest = packed_voc
    assert manifest["dataset"] == "voc" and manifest["image_size"] == [32, 32]
    assert {s: v["count"] for s, v in manifest["splits"].items()} == {"train_aug": 4, "val": 2}
    assert manifest["class_names"][:2] == ["background", "aeroplane"] and manifest["ignore_index"] == 255
    assert manifest["packer_version"] == 1 and len(manifest["content_sha256"]) == 64
    for split in ("train_aug", "val"):
        from_tree = load_voc(tree, split, 32, cache_dir="")
        for from_file in (load_packed(out, split, 32, kind="voc"), load_voc(out, split, 32),
                          DataSource.parse(f"voc:{out}").load(split, 32)):
            assert same(from_file, from_tree)
        assert data_record(load_voc(out, split, 32)) == data_record(from_tree)  # what results files record
    with np.load(out) as arrays:  # VOC's ids travel with the images, as CamVid's names do
        assert list(arrays["val_names"]) == ["2007_000010", "2007_000011"]


def test_a_file_cut_short_says_so_and_what_to_do(packed_voc, tmp_path):
    _, out, _ = packed_voc
    cut = tmp_path / "cut.npz"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size * 2 // 3])
    with pytest.raises(DataError, match=r"damaged or incomplete.*cut short.*Download it again.*pack it again"):
        load_voc(cut, "val", 32)


def test_a_changed_array_is_named_by_its_checksum(packed_voc, tmp_path):
    _, out, manifest = packed_voc
    with np.load(out) as arrays:
        content = {key: arrays[key] for key in arrays.files}
    content["val_masks"] = content["val_masks"].copy()
    content["val_masks"][0, 0, 0] = 7  # one label changed, the manifest left as it was
    tampered = tmp_path / "tampered.npz"
    with open(tampered, "wb") as f:
        np.savez_compressed(f, **content)
    assert len(load_voc(tampered, "train_aug", 32)) == 4  # an untouched split still loads
    with pytest.raises(DataError, match=r"the array val_masks does not match the checksum .* changed after it was packed"):
        load_voc(tampered, "val", 32)


def test_a_byte_flipped_inside_the_file_is_caught(packed_voc, tmp_path):
    _, out, _ = packed_voc
    data = bytearray(out.read_bytes())
    with zipfile.ZipFile(out) as z:  # a byte in the middle of the compressed val images
        info = z.getinfo("val_images.npy")
    data[info.header_offset + 100 + info.compress_size // 2] ^= 0xFF
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(data))
    with pytest.raises(DataError, match="damaged or incomplete|does not match the checksum"):
        load_voc(flipped, "val", 32)


def test_the_wrong_size_data_set_or_split_says_what_to_write(packed_voc):
    _, out, _ = packed_voc
    with pytest.raises(DataError, match=r"holds images at 32x32, not 64x64: set IMAGE_SIZE = 32"):
        load_voc(out, "val", 64)
    with pytest.raises(DataError, match=r"holds voc data, not camvid: write DATA = \"voc:"):
        load_camvid(out, "val")
    with pytest.raises(DataError, match=r"has no split 'train'; it holds \['train_aug', 'val'\]"):
        load_voc(out, "train", 32)


def test_the_command_line_packs_and_verifies(tmp_path, capsys):
    build_voc_tree(tmp_path / "tree")
    out = tmp_path / "voc16.npz"
    assert data_cli(["pack", "voc", str(tmp_path / "tree"), "--size", "16", "--out", str(out), "--splits", "train,val"]) == 0
    assert read_manifest(out)["splits"]["train"]["count"] == 3
    assert data_cli(["info", str(out)]) == 0
    said = capsys.readouterr().out
    assert "voc at 16x16, 21 classes" in said and "every checksum verified" in said
    out.write_bytes(out.read_bytes()[:100])
    assert data_cli(["info", str(out)]) == 1 and "damaged or incomplete" in capsys.readouterr().err


@pytest.mark.skipif(not CAMVID.is_file(), reason="shared/data/camvid_seg96x128.npz is not on this machine")
def test_camvid_packs_in_its_own_format_and_loads_the_same(tmp_path):
    out = tmp_path / "camvid.npz"
    pack(DataSource("camvid", CAMVID), (96, 128), out, splits=("val",), log=lambda line: None)
    assert same(load_camvid(out, "val"), load_camvid(CAMVID, "val"))
    assert json.loads(str(np.load(out)["manifest"]))["dataset"] == "camvid" and read_manifest(CAMVID) is None
