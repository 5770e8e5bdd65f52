"""The homework's code checks in both directions: correct implementations written differently from the reference
earn the check, and each planted bug fails it with a message that says what to fix.

Each implementation goes through the real probes (``segmentation_hw_probes``, here in the test's process instead of
the sandbox) and the real verdicts (``segmentation_hw.CHECKS``). The sandboxed path itself is covered by
``test_hidden_checks.py``.
"""

import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.assignment import CheckContext
from autograder.checks import segmentation_hw_probes as probes
from autograder.judge import CheckResult, run_check
from autograder.checks.segmentation_hw import ASSIGNMENT, CHECKS, make_challenge

from notebooks import REPO

REFERENCE = (REPO / "autograder" / "reference" / "segmentation_hw.py").read_text()


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread is fastest, and two OpenMP threads on a busy machine wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def reference_block(name: str) -> str:
    return REFERENCE.split(f"# BEGIN {name}\n")[1].split(f"# END {name}")[0]


def judge(source: str, probe: str, check: str, extra: str = "") -> CheckResult:
    """Runs ``source`` (after ``extra``) as a notebook cell would, probes it on a fresh challenge of the grader
    (``make_challenge``), and returns the check's verdict: the fraction of the cell's points it earns, the message
    and each part's result."""
    namespace = {"torch": torch, "nn": nn, "F": F}
    code = textwrap.dedent(extra) + "\n" + textwrap.dedent(source)
    exec(code, namespace)
    challenge = make_challenge()
    try:
        observations = {probe: getattr(probes, f"probe_{probe}")(namespace, challenge)}
    except Exception as err:  # as probes.run records it in the sandbox
        observations = {probe: {"error": probes._error(err)}}
    return run_check(check, CHECKS[check], observations, CheckContext(inputs=challenge, cells={"cell": code}))


def plant(source: str, edits: list[tuple[str, str]]) -> str:
    for old, new in edits:
        assert old in source, f"the planted bug no longer applies to the reference: {old!r}"
        source = source.replace(old, new)
    return source


def judge_block(source: str) -> CheckResult:
    return judge(source, "residual_block", "test_residual_block")


def judge_model(source: str, block: str | None = None) -> CheckResult:
    return judge(source, "segmentation_model", "test_segmentation_model", extra=block or reference_block("ResidualBlock"))


# --- ResidualBlock ------------------------------------------------------------------------------------------------

BLOCK_ALTERNATIVES = {
    "a conv helper, an OrderedDict projection, an nn.ReLU module and an in-place sum": """
        from collections import OrderedDict

        def conv3x3(cin, cout, stride=1):
            return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)

        class ResidualBlock(nn.Module):
            def __init__(self, in_channels, out_channels, stride=1):
                super().__init__()
                self.conv1 = conv3x3(in_channels, out_channels, stride)
                self.bn1 = nn.BatchNorm2d(out_channels)
                self.conv2 = conv3x3(out_channels, out_channels)
                self.bn2 = nn.BatchNorm2d(out_channels)
                self.act = nn.ReLU(inplace=True)
                needs_projection = stride > 1 or in_channels != out_channels
                self.shortcut = nn.Sequential(OrderedDict(
                    proj=nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                    norm=nn.BatchNorm2d(out_channels))) if needs_projection else nn.Identity()

            def forward(self, x):
                identity = self.shortcut(x)
                y = self.act(self.bn1(self.conv1(x)))
                y = self.bn2(self.conv2(y))
                y += identity
                return self.act(y)
        """,
    "a projection module that registers its BatchNorm first, padding='same', torch.clamp as ReLU": """
        class Projection(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.norm = nn.BatchNorm2d(cout)
                self.conv = nn.Conv2d(cin, cout, (1, 1), (stride, stride), bias=False)

            def forward(self, x):
                return self.norm(self.conv(x))

        class ResidualBlock(nn.Module):
            def __init__(self, in_channels, out_channels, stride=1):
                super().__init__()
                self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(out_channels)
                self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding="same", bias=False)
                self.bn2 = nn.BatchNorm2d(out_channels)
                if stride == 1 and in_channels == out_channels:
                    self.shortcut = nn.Identity()
                else:
                    self.shortcut = Projection(in_channels, out_channels, stride)

            def forward(self, x):
                hidden = torch.clamp(self.bn1(self.conv1(x)), min=0)
                return torch.clamp(self.shortcut(x) + self.bn2(self.conv2(hidden)), min=0)
        """,
}

BLOCK_BUGS = {  # name: ([(old text of the reference, new text)], words the message must contain)
    "without bn1": ([("out = F.relu(self.bn1(self.conv1(x)))", "out = F.relu(self.conv1(x))")], "computes a different"),
    "without the inner ReLU": ([("out = F.relu(self.bn1(self.conv1(x)))", "out = self.bn1(self.conv1(x))")],
                               "computes a different"),
    "with the stride on conv2": (
        [("self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)",
          "self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)"),
         ("self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)",
          "self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=stride, padding=1, bias=False)")],
        "conv1: yours Conv2d(8, 16, kernel=3, stride=1"),
    "a projection without BatchNorm": ([("""            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )""", """            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)""")],
                                       "parameters"),
    "convolutions with a bias": ([("self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)",
                                   "self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)")], "parameters"),
    "the ReLU before the sum": ([("return F.relu(out + self.shortcut(x))", "return F.relu(out) + self.shortcut(x)")],
                                "final ReLU"),
}


def lost_parts(result: CheckResult) -> set[str]:
    return {part.name for part in result.parts if part.points == 0}


def test_the_reference_block_passes_and_its_parts_add_up_to_the_declared_points():
    result = judge_block(reference_block("ResidualBlock"))
    assert result.fraction == 1.0, result.message
    assert sum(part.max_points for part in result.parts) == ASSIGNMENT.points["test_residual_block"]


@pytest.mark.parametrize("name", sorted(BLOCK_ALTERNATIVES))
def test_correct_blocks_written_differently_pass(name):
    result = judge_block(BLOCK_ALTERNATIVES[name])
    assert result.fraction == 1.0, result.message


@pytest.mark.parametrize("name", sorted(BLOCK_BUGS))
def test_planted_block_bugs_lose_the_points_of_their_part_with_a_useful_message(name):
    edits, words = BLOCK_BUGS[name]
    result = judge_block(plant(reference_block("ResidualBlock"), edits))
    assert result.fraction < 1.0 and words in result.message, result.message
    assert any(words in part.message for part in result.parts if part.name in lost_parts(result)), result.message


# --- SegmentationModel --------------------------------------------------------------------------------------------

MODEL_ALTERNATIVES = {
    "stages built by a helper, scale_factor upsampling, skips concatenated first": """
        def stage(cin, cout, blocks, stride):
            return nn.Sequential(ResidualBlock(cin, cout, stride), *[ResidualBlock(cout, cout) for _ in range(blocks - 1)])

        class SegmentationModel(nn.Module):
            def __init__(self, num_classes=21, width=32, num_blocks=2, downsample=True, in_channels=3):
                super().__init__()
                w, s = width, (2 if downsample else 1)
                self.downsample = downsample
                self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
                chans = (w, 2 * w, 4 * w) if downsample else (w, w, w)
                self.enc1 = stage(w, chans[0], num_blocks, s)
                self.enc2 = stage(chans[0], chans[1], num_blocks, s)
                self.enc3 = stage(chans[1], chans[2], num_blocks, s)
                if downsample:
                    self.dec2 = ResidualBlock(chans[1] + chans[2], chans[1])
                    self.dec1 = ResidualBlock(chans[0] + chans[1], chans[0])
                self.head = nn.Conv2d(2 * w if downsample else w, num_classes, kernel_size=1)

            def forward(self, x):
                up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
                s0 = self.stem(x)
                s1 = self.enc1(s0)
                s2 = self.enc2(s1)
                y = self.enc3(s2)
                if self.downsample:
                    y = self.dec2(torch.cat([s2, up(y)], 1))
                    y = self.dec1(torch.cat([s1, up(y)], 1))
                    y = torch.cat([s0, up(y)], 1)
                return self.head(y)
        """,
    "a recursive encoder list, nn.Upsample modules, a conv-BN-ReLU stem via functional calls, no ModuleList": """
        class SegmentationModel(nn.Module):
            def __init__(self, num_classes=21, width=32, num_blocks=2, downsample=True, in_channels=3):
                super().__init__()
                self.down = bool(downsample)
                self.conv0 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
                self.bn0 = nn.BatchNorm2d(width)
                mult = [1, 2, 4] if self.down else [1, 1, 1]
                previous = width
                for i, m in enumerate(mult):
                    layers = []
                    for j in range(num_blocks):
                        layers.append(ResidualBlock(previous if j == 0 else m * width, m * width,
                                                    stride=2 if (j == 0 and self.down) else 1))
                    setattr(self, f"stage{i}", nn.Sequential(*layers))
                    previous = m * width
                if self.down:
                    self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
                    self.merge_quarter = ResidualBlock(6 * width, 2 * width)
                    self.merge_half = ResidualBlock(3 * width, width)
                self.logits = nn.Conv2d(2 * width if self.down else width, num_classes, 1, bias=True)

            def forward(self, image):
                base = F.relu(self.bn0(self.conv0(image)))
                half = self.stage0(base)
                quarter = self.stage1(half)
                eighth = self.stage2(quarter)
                if not self.down:
                    return self.logits(eighth)
                x = self.merge_quarter(torch.cat((self.up(eighth), quarter), dim=1))
                x = self.merge_half(torch.cat((self.up(x), half), dim=1))
                return self.logits(torch.cat((self.up(x), base), dim=1))
        """,
}

MODEL_BUGS = {  # name: [(old text of the reference, new text)]; each runs and has the right output shape
    "no skip connections, one ×8 upsample": [
        ("""            for fuse, skip in zip(self.fuse, [features[1], features[0]]):
                out = F.interpolate(out, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                out = fuse(torch.cat([out, skip], dim=1))
            out = F.interpolate(out, size=stem.shape[-2:], mode="bilinear", align_corners=False)
            out = torch.cat([out, stem], dim=1)""",
         """            out = F.interpolate(self.reduce(out), size=stem.shape[-2:], mode="bilinear", align_corners=False)"""),
        ("        self.classifier = nn.Conv2d(head_in, num_classes, 1)",
         "        self.reduce = nn.Conv2d(4 * width, 2 * width, 1) if downsample else None\n"
         "        self.classifier = nn.Conv2d(head_in, num_classes, 1)")],
    "fuse blocks of other widths": [
        ("ResidualBlock(widths[2] + widths[1], widths[1]),  # 1/8 -> 1/4",
         "ResidualBlock(widths[2] + widths[1], widths[2]),  # 1/8 -> 1/4"),
        ("ResidualBlock(widths[1] + widths[0], widths[0]),  # 1/4 -> 1/2",
         "ResidualBlock(widths[2] + widths[0], widths[0]),  # 1/4 -> 1/2")],
    "the classifier on the decoder alone (no stem skip)": [
        ("            out = torch.cat([out, stem], dim=1)\n", ""),
        ("            head_in = 2 * width  # 1/2 -> full size, concatenated with the stem's features",
         "            head_in = width")],
}
# Bugs that keep the layout's parameter count: only what the skips carry tells them apart.
MODEL_BUGS.update({
    "the classifier gets the 1/2 stage upsampled, not the stem": [
        ("            out = torch.cat([out, stem], dim=1)",
         "            out = torch.cat([out, F.interpolate(features[0], size=stem.shape[-2:], mode='bilinear')], dim=1)")],
    "the fuse blocks get zeros where the skip belongs": [
        ("                out = fuse(torch.cat([out, skip], dim=1))",
         "                out = fuse(torch.cat([out, torch.zeros_like(skip)], dim=1))")],
    "the 1/4 fuse block gets the 1/2 stage pooled instead of the 1/4 stage": [
        ("zip(self.fuse, [features[1], features[0]])",
         "zip(self.fuse, [F.avg_pool2d(features[0].repeat(1, 2, 1, 1), 2), features[0]])")],
})
MODEL_BUGS_LOSE = {  # what each planted bug must cost: the layout (parameter counts), the skips, or both
    "no skip connections, one ×8 upsample": {"layout", "skips"},
    "fuse blocks of other widths": {"layout"},
    "the classifier on the decoder alone (no stem skip)": {"layout", "skips"},
    "the classifier gets the 1/2 stage upsampled, not the stem": {"skips"},
    "the fuse blocks get zeros where the skip belongs": {"skips"},
    "the 1/4 fuse block gets the 1/2 stage pooled instead of the 1/4 stage": {"skips"},
}


def test_the_reference_model_passes_and_its_parts_add_up_to_the_declared_points():
    result = judge_model(reference_block("SegmentationModel"))
    assert result.fraction == 1.0, result.message
    assert sum(part.max_points for part in result.parts) == ASSIGNMENT.points["test_segmentation_model"]


@pytest.mark.parametrize("name", sorted(MODEL_ALTERNATIVES))
def test_correct_models_written_differently_pass(name):
    result = judge_model(MODEL_ALTERNATIVES[name], block=BLOCK_ALTERNATIVES[sorted(BLOCK_ALTERNATIVES)[0]])
    assert result.fraction == 1.0, result.message


@pytest.mark.parametrize("name", sorted(MODEL_BUGS))
def test_planted_model_bugs_lose_the_layout_or_skip_points(name):
    result = judge_model(plant(reference_block("SegmentationModel"), MODEL_BUGS[name]))
    parts = {part.name: part for part in result.parts}
    assert lost_parts(result) == MODEL_BUGS_LOSE[name], result.message
    total = sum(part.max_points for part in result.parts)
    assert result.fraction == pytest.approx(1 - sum(parts[p].max_points for p in lost_parts(result)) / total)
    if "layout" in lost_parts(result):
        assert "parameters; the docstring's layout has" in parts["layout"].message, result.message
    if "skips" in lost_parts(result):
        assert any(words in parts["skips"].message for words in (
            "does not contain the stem's features", "does not receive the encoder's features", "fuse blocks are missing"))


def test_a_class_that_is_not_defined_earns_nothing():
    result = judge_block("x = 1")
    assert result.fraction == 0.0 and "ResidualBlock is not defined" in result.message
