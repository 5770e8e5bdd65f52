"""Class names and colour palettes of the data sets used in the course.

PASCAL VOC 2012 (Everingham et al., IJCV 2010): 20 object classes plus background,
void/boundary pixels labelled 255. CamVid (Brostow et al., PRL 2009): 11 classes, void 255.
"""

from __future__ import annotations

IGNORE_INDEX = 255

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)

CAMVID_CLASSES: tuple[str, ...] = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
    "Pedestrian", "Bicyclist",
)


def voc_palette(num_colors: int = 256) -> list[tuple[int, int, int]]:
    """The standard VOC colour map: label ``i`` gets the colour built from the bits of ``i``.

    Returns:
        ``num_colors`` RGB tuples; index 0 is black (background), index 255 is (224, 224, 192) (void).
    """
    palette = []
    for label in range(num_colors):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append((r, g, b))
    return palette


VOC_PALETTE = voc_palette()

CAMVID_PALETTE: list[tuple[int, int, int]] = [
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
]
