"""Data: PASCAL VOC 2012, CamVid, the synthetic default, and the device-side batch iterator; ``fetch`` gets VOC's and
SBD's archives, ``packed`` holds a term's splits in one file (``python -m course_lib.data``)."""

from course_lib.data.camvid import load_camvid
from course_lib.data.classes import CAMVID_CLASSES, CAMVID_PALETTE, IGNORE_INDEX, VOC_CLASSES, VOC_PALETTE, voc_palette
from course_lib.data.dataset import SegmentationTensors
from course_lib.data.loader import Augment, TensorLoader, augment_batch, denormalize_images, normalize_images
from course_lib.data.sources import DataSource, data_record, image_size
from course_lib.data.synthetic import SYNTHETIC_CLASSES, load_synthetic, make_synthetic
from course_lib.data.transforms import resize_pair
from course_lib.data.voc import VOC_SPLITS, DataError, find_voc_root, load_voc

__all__ = [
    "SegmentationTensors", "TensorLoader", "Augment", "augment_batch", "normalize_images", "denormalize_images",
    "load_synthetic", "make_synthetic", "load_voc", "load_camvid", "resize_pair", "DataError", "find_voc_root",
    "VOC_SPLITS", "SYNTHETIC_CLASSES", "VOC_CLASSES", "VOC_PALETTE", "CAMVID_CLASSES", "CAMVID_PALETTE",
    "IGNORE_INDEX", "voc_palette", "DataSource", "data_record", "image_size",
]
