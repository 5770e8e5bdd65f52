"""The synthetic default: VOC-shaped scenes generated from a seed, for demos, CI and students without VOC.

Every image holds one to four objects on a textured background. The 20 object classes are the
product of 5 shapes (disk, square, triangle, ring, cross) and 4 textures (flat, stripes, checker,
dots); each object gets a random colour, so colour says nothing about the class and a model has to
see shape and texture. Later objects occlude earlier ones. As in VOC, a void band (label 255) lies
along every boundary between two labels, and class 0 is background.

Scenes are drawn with vectorised tensor maths, a chunk of images at a time; the same seed gives the
same pixels on every machine (the draws come from ``torch.Generator`` on the CPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib.data.classes import IGNORE_INDEX, VOC_PALETTE
from course_lib.data.dataset import SegmentationTensors

SHAPES: tuple[str, ...] = ("disk", "square", "triangle", "ring", "cross")
TEXTURES: tuple[str, ...] = ("flat", "stripes", "checker", "dots")
SYNTHETIC_CLASSES: tuple[str, ...] = ("background",) + tuple(f"{t}-{s}" for s in SHAPES for t in TEXTURES)
MAX_OBJECTS = 4
SPLIT_SIZES = {"train": 4000, "val": 500, "test": 500}
_SPLIT_OFFSETS = {"train": 0, "val": 1, "test": 2}


def _shape_mask(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-test of one of ``SHAPES`` in object coordinates (unit radius).

    Args:
        shape: index into ``SHAPES``.
        u, v: (M, H, W) float coordinates, rotated and divided by the object radius.
    Returns:
        (M, H, W) bool.
    """
    name = SHAPES[shape]
    if name in ("disk", "ring"):
        rho2 = u * u + v * v
        return (rho2 <= 1.0) if name == "disk" else (rho2 >= 0.3) & (rho2 <= 1.0)
    if name == "square":
        return torch.maximum(u.abs(), v.abs()) <= 0.82
    if name == "cross":
        au, av = u.abs(), v.abs()
        return (torch.maximum(au, av) <= 1.0) & (torch.minimum(au, av) <= 0.34)
    c30 = math.cos(math.pi / 6) / 1.15  # triangle, enlarged to an area like the others'
    return (v >= -0.575) & (u * c30 + v * 0.4348 <= 0.5) & (-u * c30 + v * 0.4348 <= 0.5)


def _texture_pattern(texture: int, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """One of ``TEXTURES`` as a two-tone pattern in texture coordinates measured in periods.

    Args:
        texture: index into ``TEXTURES``.
        s, t: (M, H, W) float coordinates along and across the texture, in periods.
    Returns:
        (M, H, W) bool: True where the second tone is painted.
    """
    name = TEXTURES[texture]
    if name == "flat":
        return torch.zeros(s.shape, dtype=torch.bool)
    fs = s - torch.floor(s)  # position inside the period, in [0, 1)
    if name == "stripes":
        return fs < 0.5
    ft = t - torch.floor(t)
    if name == "checker":
        return (fs < 0.5) ^ (ft < 0.5)
    return (fs - 0.5) ** 2 + (ft - 0.5) ** 2 < 0.09  # dots


def _per_kind(kinds: torch.Tensor, num_kinds: int, draw, origin_x: torch.Tensor, origin_y: torch.Tensor,
              angle: torch.Tensor, scale: torch.Tensor, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
    """Evaluates ``draw(kind, a, b)`` for every row, in rotated and scaled coordinates ``(a, b)``.

    Rows are sorted by kind first, so that each kind is one contiguous slice and no coordinate tensor is copied.

    Args:
        kinds: (M,) int64 kind of each row.
        origin_x, origin_y, angle, scale: (M, 1, 1) float per row.
        xx, yy: (H, W) pixel-centre coordinates.
    Returns:
        (M, H, W) bool, in the original row order.
    """
    order = torch.argsort(kinds, stable=True)
    dx, dy = xx - origin_x[order], yy - origin_y[order]  # (M, H, W), rows sorted by kind
    cos, sin, scl = torch.cos(angle[order]), torch.sin(angle[order]), scale[order]
    a, b = (dx * cos + dy * sin) / scl, (dy * cos - dx * sin) / scl
    out = torch.empty(a.shape, dtype=torch.bool)
    counts = torch.bincount(kinds, minlength=num_kinds).tolist()
    start = 0
    for kind, count in enumerate(counts):
        if count:
            out[start:start + count] = draw(kind, a[start:start + count], b[start:start + count])
        start += count
    result = torch.empty_like(out)
    result[order] = out
    return result


def _void_band(labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Marks with ``ignore_index`` every pixel that has a differently labelled 8-neighbour.

    Args:
        labels: (N, H, W) uint8.
    Returns:
        (N, H, W) uint8, the same labels with a 2-pixel void band along each boundary.
    """
    edge = torch.zeros_like(labels, dtype=torch.bool)
    pairs = [  # (this pixel, its neighbour) as slices of (H, W), for right, down, down-right, down-left
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
        ((slice(None, -1), slice(None, -1)), (slice(1, None), slice(1, None))),
        ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))),
    ]
    for (ya, xa), (yb, xb) in pairs:
        differs = labels[:, ya, xa] != labels[:, yb, xb]
        edge[:, ya, xa] |= differs
        edge[:, yb, xb] |= differs
    return labels.masked_fill(edge, ignore_index)


def _draw_chunk(count: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Draws ``count`` scenes. Returns images (count, 3, size, size) uint8 and masks (count, size, size) uint8."""
    n, k = count, MAX_OBJECTS

    def uniform(*shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return torch.rand(*shape, generator=gen) * (high - low) + low

    axis = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")  # (H, W)

    # Background: a smooth colour field, a faint random texture of its own, pixel noise.
    field = F.interpolate(uniform(n, 3, 4, 4, low=0.15, high=0.85), size=(size, size), mode="bilinear", align_corners=False)
    bg_angle = uniform(n, 1, 1, low=0, high=math.pi)
    bg_period = uniform(n, 1, 1, low=4.0, high=9.0)
    bg_kind = torch.randint(0, len(TEXTURES), (n,), generator=gen)
    zero = torch.zeros(n, 1, 1)
    bg_pattern = _per_kind(bg_kind, len(TEXTURES), _texture_pattern, zero, zero, bg_angle, bg_period, xx, yy)
    bg_strength = uniform(n, 1, 1, 1, low=0.0, high=0.12)
    image = (field + bg_strength * (bg_pattern.unsqueeze(1).float() - 0.5)).clamp(0, 1)
    labels = torch.zeros(n, size, size, dtype=torch.int64)

    # Objects: class = 1 + 4 * shape + texture; geometry, colours and texture phase all random.
    num_objects = torch.randint(1, k + 1, (n, 1), generator=gen)
    present = torch.arange(k).unsqueeze(0) < num_objects  # (N, K)
    classes = torch.randint(1, len(SYNTHETIC_CLASSES), (n, k), generator=gen)
    shape_id, texture_id = (classes - 1) // len(TEXTURES), (classes - 1) % len(TEXTURES)
    cx, cy = uniform(n, k, 1, 1, low=0.12 * size, high=0.88 * size), uniform(n, k, 1, 1, low=0.12 * size, high=0.88 * size)
    radius = uniform(n, k, 1, 1, low=0.18 * size, high=0.32 * size)
    theta = uniform(n, k, 1, 1, low=0, high=2 * math.pi)
    period = uniform(n, k, 1, 1, low=4.0, high=7.0)
    phi = uniform(n, k, 1, 1, low=0, high=math.pi)
    # Geometry only for the objects that are present: M rows, one per (image, slot) pair.
    img_idx, slot_idx = present.nonzero(as_tuple=True)
    pick = lambda x: x[img_idx, slot_idx]  # (N, K, ...) → (M, ...)
    inside = torch.zeros(n, k, size, size, dtype=torch.bool)
    tone2 = torch.zeros(n, k, size, size, dtype=torch.bool)
    inside[img_idx, slot_idx] = _per_kind(pick(shape_id), len(SHAPES), _shape_mask, pick(cx), pick(cy), pick(theta),
                                          pick(radius), xx, yy)
    tone2[img_idx, slot_idx] = _per_kind(pick(texture_id), len(TEXTURES), _texture_pattern, pick(cx), pick(cy),
                                         pick(phi), pick(period), xx, yy)

    colour = uniform(n, k, 3, low=0.05, high=0.95)
    darker = uniform(n, k, 1) < 0.5
    second = torch.where(darker, colour * 0.3, colour + (1 - colour) * 0.65)  # (N, K, 3)
    # Later slots occlude earlier ones: each pixel shows its topmost object, 0 = background.
    slot_rank = torch.arange(1, k + 1, dtype=torch.uint8).view(1, k, 1, 1)
    top = (inside.to(torch.uint8) * slot_rank).amax(dim=1).long()  # (N, H, W) in 0..K
    covered = top > 0
    top_slot = (top - 1).clamp(min=0)  # (N, H, W)
    n_col = torch.arange(n).view(n, 1, 1)
    shows_second = tone2.gather(1, top_slot.unsqueeze(1)).squeeze(1)  # (N, H, W)
    obj = torch.where(shows_second.unsqueeze(-1), second[n_col, top_slot], colour[n_col, top_slot])  # (N, H, W, 3)
    image = torch.where(covered.unsqueeze(1), obj.permute(0, 3, 1, 2), image)
    labels = torch.where(covered, classes.gather(1, top_slot.flatten(1)).view(n, size, size), labels)

    image = (image + 0.03 * torch.randn(image.shape, generator=gen)).clamp(0, 1)
    return (image * 255).round().to(torch.uint8), _void_band(labels.to(torch.uint8), IGNORE_INDEX)


def make_synthetic(num_images: int, size: int = 64, seed: int = 0, chunk_size: int = 128,
                   generator: torch.Generator | None = None) -> SegmentationTensors:
    """Generates ``num_images`` synthetic scenes deterministically from ``seed``.

    Args:
        num_images: how many scenes.
        size: side of the square images, in pixels (the scene scales with it).
        seed: same seed, same scenes.
        chunk_size: scenes drawn per vectorised step (memory vs speed).
        generator: draw from this generator instead of one seeded with ``seed`` (``manual_seed`` keeps 32 bits of a
            seed; the grader's held-out scenes come from a generator whose whole state is drawn from its secret).
    Returns:
        ``SegmentationTensors`` with images (N, 3, size, size) uint8 and masks (N, size, size) uint8,
        21 classes (``SYNTHETIC_CLASSES``), void = 255, the VOC palette.
    """
    if num_images < 0 or size < 8:
        raise ValueError(f"need num_images >= 0 and size >= 8, got {num_images}, {size}")
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    images, masks = [], []
    for start in range(0, num_images, chunk_size):
        imgs, msks = _draw_chunk(min(chunk_size, num_images - start), size, gen)
        images.append(imgs)
        masks.append(msks)
    if not images:
        images, masks = [torch.empty(0, 3, size, size, dtype=torch.uint8)], [torch.empty(0, size, size, dtype=torch.uint8)]
    return SegmentationTensors(
        torch.cat(images), torch.cat(masks), SYNTHETIC_CLASSES, tuple(VOC_PALETTE), IGNORE_INDEX,
        name=f"synthetic-{num_images}@{size}-" + ("secret" if generator is not None else f"seed{seed}"),
    )


def load_synthetic(split: str = "train", size: int = 64, num_images: int | None = None, seed: int = 0) -> SegmentationTensors:
    """One split of the synthetic default, the same interface as ``load_voc``.

    Args:
        split: ``"train"`` (4,000 scenes), ``"val"`` (500) or ``"test"`` (500); the splits never share a scene.
        size: image side in pixels (64 like the VOC task).
        num_images: override the split's size.
        seed: the family of scenes; each split derives its own stream from it.
    """
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown synthetic split {split!r}; valid splits: {sorted(SPLIT_SIZES)}")
    count = SPLIT_SIZES[split] if num_images is None else num_images
    data = make_synthetic(count, size=size, seed=seed * 7919 + _SPLIT_OFFSETS[split])
    return SegmentationTensors(data.images, data.masks, data.class_names, data.palette, data.ignore_index,
                               name=f"synthetic-{split}@{size}")
