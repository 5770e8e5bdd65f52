"""SBD's .mat labels become VOC PNGs that ``load_voc(..., "train_aug")`` trains on (on trees built here)."""

import numpy as np
import pytest
import scipy.io
from PIL import Image

from course_lib.data import load_voc
from course_lib.data.sbd import write_sbd_labels
from course_lib.data.voc import DataError
from test_data import build_voc_tree


def build_sbd_tree(root, labels: dict[str, np.ndarray]):
    """SBD's dataset layout: img/<id>.jpg, cls/<id>.mat (struct GTcls with field Segmentation), train.txt, val.txt."""
    (root / "img").mkdir(parents=True)
    (root / "cls").mkdir()
    for image_id, label in labels.items():
        Image.fromarray(np.zeros((*label.shape, 3), dtype=np.uint8)).save(root / "img" / f"{image_id}.jpg")
        scipy.io.savemat(root / "cls" / f"{image_id}.mat", {"GTcls": {"Segmentation": label}})
    ids = sorted(labels)
    (root / "train.txt").write_text("\n".join(ids[:-1]) + "\n")
    (root / "val.txt").write_text(ids[-1] + "\n")
    return root


def test_sbd_labels_join_the_augmented_training_split(tmp_path):
    voc = build_voc_tree(tmp_path / "data", ids_train=("2007_000001",), ids_val=("2007_000010",),
                         aug_ids=("2008_000100", "2008_000101"))
    labels = {}
    for image_id in ("2008_000100", "2008_000101"):  # SBD provides these two labels
        (voc / "SegmentationClassAug" / f"{image_id}.png").unlink()
        width, height = Image.open(voc / "JPEGImages" / f"{image_id}.jpg").size
        labels[image_id] = np.zeros((height, width), dtype=np.uint8)
        labels[image_id][10:50, 20:80] = 7  # a car
    sbd = build_sbd_tree(tmp_path / "sbd", labels)
    assert write_sbd_labels(sbd, tmp_path / "data") == 2
    written = np.array(Image.open(voc / "SegmentationClassAug" / "2008_000101.png"))
    assert Image.open(voc / "SegmentationClassAug" / "2008_000101.png").mode == "P"
    assert np.array_equal(written, labels["2008_000101"])
    aug = load_voc(tmp_path / "data", "train_aug", size=32, cache_dir="")
    assert len(aug) == 3 and 7 in aug.masks.unique().tolist()  # VOC's own train image and SBD's two


def test_an_sbd_label_for_an_image_voc_lacks_says_so(tmp_path):
    build_voc_tree(tmp_path / "data")
    sbd = build_sbd_tree(tmp_path / "sbd", {"2099_000001": np.zeros((8, 8), np.uint8),
                                              "2099_000002": np.zeros((8, 8), np.uint8)})
    with pytest.raises(DataError, match="is this VOC 2012"):
        write_sbd_labels(sbd, tmp_path / "data")


def test_missing_sbd_says_how_to_get_it(tmp_path):
    build_voc_tree(tmp_path / "data")
    with pytest.raises(DataError, match="python -m course_lib.data fetch sbd"):
        write_sbd_labels(tmp_path / "nowhere", tmp_path / "data")
