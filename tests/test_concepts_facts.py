"""Assignment 2's corrected statements (issue 25), each against its primary source, with the figure computed here
wherever one can be. Sources: Mask2Former (Cheng et al., CVPR 2022, its limitations section); Boundary IoU (Cheng
et al., CVPR 2021); SegFormer (Xie et al., NeurIPS 2021); DeepLabV3+ (Chen et al., ECCV 2018); U-Net (Ronneberger
et al., MICCAI 2015); PVT v2 (Wang et al., CVMJ 2022); SAM (Kirillov et al., ICCV 2023, and its code's
PositionEmbeddingRandom and automatic mask generator); SAM 2 (Ravi et al., 2024); Mask R-CNN (He et al., ICCV
2017) and FPN (Lin et al., CVPR 2017); Eigen and Fergus (ICCV 2015); panoptic quality (Kirillov et al., CVPR 2019).
"""

from __future__ import annotations

import json
import math
import re

import nbformat
import torch
import torch.nn.functional as F
from torch import nn

from autograder import oracles
from autograder.reference import segmentation_concepts as reference
from notebooks import REPO, cells_by_id

CELLS = cells_by_id(nbformat.read(REPO / "source" / "segmentation_concepts" / "segmentation_concepts.ipynb",
                                  as_version=4))


def text(grade_id: str) -> str:
    return " ".join(CELLS[grade_id].source.split())


def everything() -> str:
    return " ".join(" ".join(c.source.split()) for c in CELLS.values())


def test_mask2former_is_one_architecture_trained_per_task():
    md = text("t1_panoptic_md")
    assert "one *architecture*" in md and "It is not one model for all three" in md and "trained per task" in md
    assert "with one model for all three tasks" not in everything() and "The same network reached" not in everything()


def test_mask_ap_is_dominated_by_interiors_as_boundary_iou_shows():
    """A 64 x 64 square one pixel off keeps mask IoU 0.97 while its boundary F1 at tolerance 0 collapses."""
    square = torch.zeros(80, 80, dtype=torch.bool)
    square[8:72, 8:72] = True
    moved = torch.roll(square, 1, dims=1)
    mask_iou = float((square & moved).sum() / (square | moved).sum())
    assert round(mask_iou, 2) == 0.97 and oracles.binary_boundary_f1(moved, square, 0) < 0.6
    md = text("t6_metrics_md")
    assert "mask IoU 0.97" in md and "*Boundary IoU*, CVPR 2021" in md and "hardly rewards better boundaries" in md
    assert "separates methods by boundary quality" not in everything()


def test_segformer_decoder_has_no_3x3_convolution_and_deeplabv3plus_upsamples_by_4():
    from course_lib.models import SegFormer

    decoder_kernels = [m.kernel_size for name, m in SegFormer().named_modules()
                       if isinstance(m, nn.Conv2d) and name.startswith(("linear_c", "fuse", "classifier"))]
    assert decoder_kernels and set(decoder_kernels) == {(1, 1)}, decoder_kernels  # course_lib's decoder too
    q8 = text("q8_answer")
    assert "DeepLabV3+ upsamples bilinearly ×4" in q8 and "upsamples each stage bilinearly and fuses with linear layers" in q8
    assert "(DeepLabV3+, SegFormer)" not in q8
    assert "no 3 × 3 convolution anywhere in the decoder" in text("t10_segformer_md")


def _unet_output_side(side: int, depth: int = 4) -> int | None:
    """Output side of the original U-Net (unpadded 3x3 convolutions) for an input tile; None when a 2x2 max-pool
    would meet an odd side (the tile cannot be used)."""
    for _ in range(depth):
        side -= 4
        if side % 2:
            return None
        side //= 2
    side -= 4
    for _ in range(depth):
        side = side * 2 - 4
    return side


def test_unet_tiles_are_constrained_and_the_network_is_not_small():
    assert _unet_output_side(572) == 388 and _unet_output_side(570) is None
    widths = [64, 128, 256, 512, 1024]  # the original network: 1 input channel, 2 classes, 2x2 up-convolutions
    conv = lambda cin, cout, k: cin * cout * k * k + cout
    encoder = sum(conv(cin, cout, 3) + conv(cout, cout, 3) for cin, cout in zip([1] + widths[:-1], widths))
    decoder = sum(conv(w * 2, w, 2) + conv(w * 2, w, 3) + conv(w, w, 3) for w in reversed(widths[:-1]))
    parameters = encoder + decoder + conv(64, 2, 1)
    assert round(parameters / 1e6) == 31, parameters
    q2 = text("q2_answer")
    assert "about 31 million weights" in q2 and "388 from 572 pixels" in q2 and "even sides" in q2
    assert "tiles of any size" not in everything()
    assert "modest number of parameters" not in text("q2_ask") and "about 31 M" in q2


def test_pvt_v2_linear_variant_pools_to_a_fixed_7x7_grid():
    md = text("t10_segformer_md")
    assert "fixed 7 × 7 grid whatever the input size" in md and "grows only linearly with N" in md
    assert "(the choice of PVT v2's linear variant)" not in everything()
    costs = [4 * n * 49 * 64 for n in (1024, 2048, 4096)]  # the two products with 49 keys: linear in N
    assert costs[1] == 2 * costs[0] and costs[2] == 2 * costs[1]


def test_sam2_built_a_new_video_data_engine_and_a_point_may_keep_no_mask():
    md = text("t7_sam_md")
    assert "a new data engine built for video" in md and "the same data engine, run on video" not in everything()
    assert "a point can end with no mask at all" in md
    assert "keeps one to three per click" not in everything()
    candidates = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(0)) * 5
    stability = reference.stability_score(candidates, 1.0)
    kept = reference.plausible_masks(candidates, torch.tensor([0.86, 0.8, 0.7]), stability)  # SAM's defaults
    assert kept.shape[0] == 0


def test_sams_point_encoding_maps_coordinates_to_minus_one_one_first():
    """SAM's PositionEmbeddingRandom._pe_encoding: coords = 2 * coords - 1; coords @ G; 2 * pi * coords;
    cat(sin, cos). The reference is that, and the docstring says so."""
    g = torch.Generator().manual_seed(3)
    points, gaussian = torch.rand(5, 2, generator=g), torch.randn(2, 16, generator=g)
    coords = 2 * math.pi * ((2 * points - 1) @ gaussian)
    assert torch.allclose(reference.fourier_point_encoding(points, gaussian), torch.cat([coords.sin(), coords.cos()], -1))
    assert "[-1, 1] (2p - 1)" in CELLS["t7_sam"].source and "as SAM's prompt encoder uses" not in everything()


def test_mask_rcnn_proposals_rois_and_fpn_levels():
    md = text("t3_roi_align_md")
    assert "1,000 best-scored proposals per image at test time" in md and "samples 512 of them per image" in md
    assert "a quarter positive" in md and "the best few hundred become" not in everything()
    level = lambda w, h: min(5, max(2, math.floor(4 + math.log2(math.sqrt(w * h) / 224))))
    assert (level(224, 224), level(56, 56), level(20, 20), level(1000, 800)) == (4, 2, 2, 5)
    assert [2**k for k in range(2, 6)] == [4, 8, 16, 32]
    assert "a 224-pixel box from P4 (stride 16), a 56-pixel box from P2 (stride 4)" in md
    q3 = text("q3_answer")
    assert "4 to 32 image pixels" in q3 and "16 or 32 image pixels" not in everything()


def test_transposed_convolution_footprints():
    """Kernel 3, stride 2: input i lands on outputs 2i, 2i + 1, 2i + 2; outputs 2, 4, 6, ... get two contributions."""
    conv = nn.ConvTranspose1d(1, 1, 3, stride=2, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    for i in range(4):
        impulse = torch.zeros(1, 1, 4)
        impulse[0, 0, i] = 1
        with torch.no_grad():
            assert conv(impulse)[0, 0].nonzero().flatten().tolist() == [2 * i, 2 * i + 1, 2 * i + 2]
    with torch.no_grad():
        coverage = conv(torch.ones(1, 1, 4))[0, 0].tolist()
    assert [k for k, v in enumerate(coverage) if v == 2] == [2, 4, 6]
    md = text("t8_upsampling_md")
    assert "input i lands on outputs 2i, 2i + 1 and 2i + 2" in md and "outputs 2, 4, 6, … receive two contributions" in md
    assert "3 output positions, 2 apart" not in everything()


def test_atrous_kernel_span_and_gridding():
    for d in (1, 2, 3, 5):
        conv = nn.Conv2d(1, 1, 3, padding=d, dilation=d, bias=False)
        nn.init.constant_(conv.weight, 1.0)
        x = torch.zeros(1, 1, 21, 21, requires_grad=True)
        conv(x)[0, 0, 10, 10].backward()
        rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
        assert int(rows[-1] - rows[0] + 1) == 2 * d + 1  # (k - 1) * d + 1 for k = 3
    gridded = nn.Sequential(nn.Conv2d(1, 1, 3, padding=2, dilation=2, bias=False), nn.Conv2d(1, 1, 3, padding=4, dilation=4, bias=False))
    for conv in gridded:
        nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(1, 1, 33, 33, requires_grad=True)
    gridded(x)[0, 0, 16, 16].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    assert int(rows[-1] - rows[0] + 1) == 13 and len(rows) == 7
    assert "the field spans 13 rows but only 7 of them reach the centre" in text("t5_atrous_md")
    assert "(2d + 1)×(2d + 1)" in text("t5_atrous_md")
    assert "per side" not in CELLS["t5_atrous"].source


def test_median_frequency_follows_eigen_and_fergus():
    assert "in which class c occurs at least once" in CELLS["t9_imbalance"].source
    assert "the images *in which it appears*" in text("t9_imbalance_md")
    masks = torch.tensor([[[1, 1], [1, 1]], [[0, 0], [0, 2]], [[0, 0], [0, 0]]])  # class 1 fills the one image it is in
    weights = oracles.median_frequency_weights(masks, 3)
    assert weights[1] < weights[0]  # not rare where it appears: smaller weight than the background's
    share = torch.bincount(masks.flatten(), minlength=3).double() / masks.numel()
    assert (share.median() / share)[1] > (share.median() / share)[0]  # the share of all pixels says the opposite


def test_panoptic_quality_of_class_means_is_not_the_product_of_the_means():
    target = torch.zeros(40, 40, dtype=torch.long)
    target[10:16, 10:16] = 1
    target[30:33, 5:9] = 2
    truth_map = torch.where(target > 0, target * 1000 + 1, torch.zeros_like(target))
    pred_map = torch.roll(truth_map, 1, dims=1)
    pred_map[30:33, 5:7] = 0
    pq, sq, rq = reference.panoptic_quality(pred_map, truth_map)
    assert abs(pq - sq * rq) > 0.01, (pq, sq, rq)
    demo = CELLS["t6_metrics_demo"].source
    assert "pq, sq, rq = panoptic_quality(pred_map, truth_map)" in demo and "not the product of the means" in demo
    assert "A data set's PQ is the mean over classes of each class's PQ" in text("t1_panoptic_md")


def test_the_skip_experiment_is_quoted_as_measured():
    bench = json.loads((REPO / "bench" / "results" / "skip_experiment_cpu.json").read_text())
    md = text("t2_unet_md")
    s100, s300 = bench["settings"]["100"], bench["settings"]["300"]
    d100, d300 = s100["drop_without_skips"], s300["drop_without_skips"]
    assert s100["seeds"] == s300["seeds"] >= 3
    for figure in (f"{d100['miou']['median']:.3f}", f"{d100['bf1_t0']['median']:.3f}",
                   f"{d300['miou']['mean']:.2f} ± {d300['miou']['sd']:.2f}",
                   f"{d300['bf1_t0']['mean']:.2f} ± {d300['bf1_t0']['sd']:.2f}",
                   f"{s100['seeds_where_bf1_t0_drops_more_than_miou']} of {s100['seeds']} seeds",
                   f"{s100['seeds_where_skips_lose_miou']} of {s100['seeds']} seeds"):
        assert figure in md, figure
    first = [r for r in bench["rows"] if r["steps"] == 100][:3]
    q2 = text("q2_answer")
    assert ", ".join(f"{r['miou_drop']:.3f}" for r in first) + " mIoU" in q2
    demo = [CELLS[g].source for g in ("t2_unet_demo", "t2_unet_demo_seed1", "t2_unet_demo_seed2")]
    assert [d.strip().splitlines()[-1] for d in demo] == [f"skip_experiment({seed})" for seed in range(3)]  # the bench's first three
    assert "train_skip_unet(images, labels, skips=skips, seed=seed)" in demo[0]  # the benchmark's function


def test_the_skip_experiments_rubric_grades_the_reading_not_the_direction():
    ask = text("q2_ask")
    assert "comparing the two gaps with each other and with the spread between seeds" in ask and "(whatever their direction)" in ask
    assert "boundary F1 drops more than mIoU" not in ask


def test_rubrics_show_criteria_and_the_tas_copy_holds_the_content():
    from autograder.checks.segmentation_concepts import WRITTEN_POINTS

    for n in range(1, 11):
        ask, answer = CELLS[f"q{n}_ask"].source, CELLS[f"q{n}_answer"]
        points = WRITTEN_POINTS[f"q{n}_answer"]
        rubric = ask.split(f"*Rubric ({points} points, graded by hand; what is assessed, one point per item):*")[1]
        items = re.findall(r"^- (.*)$", rubric, flags=re.M)
        assert len(items) == points and all(item.startswith("1 — ") for item in items), n
        assert all(len(item.split()) <= 30 and "=" not in item for item in items), n  # criteria, not answer keys
        assert answer.metadata["nbgrader"]["points"] == points
        notes = answer.source.split("**Marking notes (TA's copy; one point each):**")[1]
        assert all(f"({k})" in notes for k in range(1, points + 1)) or n == 9, n  # q9: (1)–(4) are four strategies


def test_the_stated_times_are_the_estimates_of_bench_concepts_time():
    """The introduction quotes bench/concepts_time.py's minutes per topic and their total in hours."""
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from concepts_time import estimate

    minutes = estimate()
    intro = text("intro")
    stated = [int(m) for _, m in re.findall(r"topic (\d+) (\d+) min", intro)]  # topic 1 80 min, topic 2 65 min, ...
    assert stated == list(minutes.values()), (stated, minutes)
    assert f"**Expected time** (about {round(sum(minutes.values()) / 60)} hours" in intro
