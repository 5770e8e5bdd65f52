"""Honest students for the similarity benchmarks: correct implementations of the homework's two code cells, each
written independently, as a class of students would write them.

The docstrings fix every layer (names ``conv1``, ``bn1``, ``conv2``, ``bn2``, ``shortcut``; the model's layout), so
honest students differ only in how they write it: how a convolution is built, how the projection is chosen, which
ReLU they call, how the forward pass is laid out, how the stages and the decoder are assembled, how they upsample
and in which order they concatenate. Each student makes each of those choices independently (seeded), and two
students who happen to make the same choices write the same lines, as real students do under a tight
specification. That is what the code score's honest distribution is measured on. Every implementation passes the
homework's real probes and checks (``check_implementation``), so none of them is a buggy stand-in.

The hand-written alternatives of ``tests/test_hw_structure_checks.py`` and the reference solution are part of the
pool (students 0, 1 and 2).
"""

from __future__ import annotations

import random
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# --- ResidualBlock idioms ------------------------------------------------------------------------------------------

CONV = {  # how conv1 / conv2 are built: (helper defined before the class, conv1, conv2)
    "positional": ("", "nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)",
                   "nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)"),
    "keywords": ("", "nn.Conv2d(in_channels=in_channels, out_channels=out_channels, kernel_size=3, stride=stride, "
                     "padding=1, bias=False)",
                 "nn.Conv2d(in_channels=out_channels, out_channels=out_channels, kernel_size=3, padding=1, bias=False)"),
    "helper": ("def conv3x3(cin, cout, stride=1):\n    \"\"\"3x3 convolution, padding 1, no bias.\"\"\"\n"
               "    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)\n\n\n",
               "conv3x3(in_channels, out_channels, stride)", "conv3x3(out_channels, out_channels)"),
    "partial": ("from functools import partial\n\nConv3 = partial(nn.Conv2d, kernel_size=(3, 3), padding=(1, 1), "
                "bias=False)\n\n\n", "Conv3(in_channels, out_channels, stride=(stride, stride))",
                "Conv3(out_channels, out_channels)"),
}

SHORTCUT = {  # lines of __init__ (8 spaces) that set self.shortcut, plus an optional helper class
    "if-else": ("", """\
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()
"""),
    "flag": ("", """\
        needs_projection = (stride > 1) or (in_channels != out_channels)
        self.shortcut = (nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                       nn.BatchNorm2d(out_channels))
                         if needs_projection else nn.Identity())
"""),
    "identity-first": ("", """\
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            proj = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.shortcut = nn.Sequential(proj, nn.BatchNorm2d(out_channels))
"""),
    "class": ("""\
class Projection(nn.Sequential):
    \"\"\"1x1 convolution with a stride, then BatchNorm: the shortcut when the shape changes.\"\"\"

    def __init__(self, cin, cout, stride):
        super().__init__(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


""", """\
        same_shape = stride == 1 and in_channels == out_channels
        self.shortcut = nn.Identity() if same_shape else Projection(in_channels, out_channels, stride)
"""),
}

ACT = {  # (extra __init__ line, expression of ReLU(z))
    "F.relu": ("", "F.relu({})"),
    "torch.relu": ("", "torch.relu({})"),
    "module": ("        self.relu = nn.ReLU()\n", "self.relu({})"),
    "clamp": ("", "({}).clamp(min=0)"),
}

FORWARD = {  # the body of forward(self, x), with {act} standing for the ReLU call of ACT
    "steps": """\
        out = {act_bn1}
        out = self.bn2(self.conv2(out))
        return {act_sum}
""",
    "nested": """\
        return {act_nested}
""",
    "identity-first": """\
        identity = self.shortcut(x)
        h = {act_bn1_h}
        h = self.bn2(self.conv2(h))
        h = h + identity
        return {act_h}
""",
    "residual-name": """\
        residual = self.shortcut(x)
        y = self.conv1(x)
        y = self.bn1(y)
        y = {act_y}
        y = self.conv2(y)
        y = self.bn2(y)
        return {act_y_res}
""",
}


def residual_block(conv: str, shortcut: str, act: str, forward: str) -> str:
    helper, conv1, conv2 = CONV[conv]
    shortcut_helper, shortcut_lines = SHORTCUT[shortcut]
    act_line, relu = ACT[act]
    body = FORWARD[forward].format(
        act_bn1=relu.format("self.bn1(self.conv1(x))"), act_sum=relu.format("out + self.shortcut(x)"),
        act_nested=relu.format("self.bn2(self.conv2(" + relu.format("self.bn1(self.conv1(x))") + ")) + self.shortcut(x)"),
        act_bn1_h=relu.format("self.bn1(self.conv1(x))"), act_h=relu.format("h"),
        act_y=relu.format("y"), act_y_res=relu.format("y + residual"))
    return (f"{helper}{shortcut_helper}class ResidualBlock(nn.Module):\n"
            "    def __init__(self, in_channels, out_channels, stride=1):\n"
            "        super().__init__()\n"
            f"        self.conv1 = {conv1}\n"
            "        self.bn1 = nn.BatchNorm2d(out_channels)\n"
            f"        self.conv2 = {conv2}\n"
            "        self.bn2 = nn.BatchNorm2d(out_channels)\n"
            f"{shortcut_lines}{act_line}\n"
            "    def forward(self, x):\n"
            f"{body}")


# --- SegmentationModel idioms --------------------------------------------------------------------------------------

STEM = {  # (__init__ lines, forward expression of the stem's features of x)
    "sequential": ("""\
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
""", "self.stem(x)"),
    "separate": ("""\
        self.conv0 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(width)
""", "F.relu(self.bn0(self.conv0(x)))"),
    "helper": ("""\
        self.stem = conv_bn_relu(in_channels, width)
""", "self.stem(x)"),
}
STEM_HELPER = """\
def conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


"""

STAGES = {  # __init__ lines that define the three encoder stages; forward lines that run them into f1, f2, f3
    "modulelist": ("""\
        widths = [width, 2 * width, 4 * width] if downsample else [width] * 3
        stride = 2 if downsample else 1
        self.stages = nn.ModuleList()
        cin = width
        for cout in widths:
            layers = [ResidualBlock(cin, cout, stride)] + [ResidualBlock(cout, cout) for _ in range(num_blocks - 1)]
            self.stages.append(nn.Sequential(*layers))
            cin = cout
""", """\
        f1 = self.stages[0](s)
        f2 = self.stages[1](f1)
        f3 = self.stages[2](f2)
"""),
    "helper": ("""\
        s = 2 if downsample else 1
        w1, w2, w3 = (width, 2 * width, 4 * width) if downsample else (width, width, width)
        self.enc1 = make_stage(width, w1, num_blocks, s)
        self.enc2 = make_stage(w1, w2, num_blocks, s)
        self.enc3 = make_stage(w2, w3, num_blocks, s)
""", """\
        f1 = self.enc1(s)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
"""),
    "setattr": ("""\
        mult = (1, 2, 4) if downsample else (1, 1, 1)
        prev = width
        for i, m in enumerate(mult):
            blocks = []
            for j in range(num_blocks):
                first = j == 0
                blocks.append(ResidualBlock(prev if first else m * width, m * width,
                                            stride=2 if (first and downsample) else 1))
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            prev = m * width
""", """\
        f1 = self.layer1(s)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
"""),
}
STAGE_HELPER = """\
def make_stage(cin, cout, num_blocks, stride):
    \"\"\"num_blocks residual blocks; the first changes the width and the resolution.\"\"\"
    blocks = [ResidualBlock(cin, cout, stride)]
    for _ in range(num_blocks - 1):
        blocks.append(ResidualBlock(cout, cout))
    return nn.Sequential(*blocks)


"""

UPSAMPLE = {  # (extra __init__ line, expression that upsamples {t} to the size of {ref})
    "size": ("", "F.interpolate({t}, size={ref}.shape[-2:], mode=\"bilinear\", align_corners=False)"),
    "scale": ("", "F.interpolate({t}, scale_factor=2, mode=\"bilinear\", align_corners=False)"),
    "module": ("            self.up = nn.Upsample(scale_factor=2, mode=\"bilinear\", align_corners=False)\n",
               "self.up({t})"),
}

DECODER = {  # __init__ lines (inside `if downsample:`), forward lines from f3 to `out` (before the head)
    "modulelist": ("""\
            self.fuse = nn.ModuleList([ResidualBlock(6 * width, 2 * width), ResidualBlock(3 * width, width)])
""", """\
        out = f3
        for block, skip in zip(self.fuse, (f2, f1)):
            out = block(torch.cat({pair_loop}, dim=1))
        out = torch.cat({pair_stem}, dim=1)
"""),
    "named": ("""\
            self.dec2 = ResidualBlock(4 * width + 2 * width, 2 * width)
            self.dec1 = ResidualBlock(2 * width + width, width)
""", """\
        d2 = self.dec2(torch.cat({pair_d2}, dim=1))
        d1 = self.dec1(torch.cat({pair_d1}, dim=1))
        out = torch.cat({pair_stem1}, dim=1)
"""),
}


def segmentation_model(stem: str, stages: str, upsample: str, decoder: str, skip_first: bool) -> str:
    stem_init, stem_expr = STEM[stem]
    stage_init, stage_fwd = STAGES[stages]
    up_init, up = UPSAMPLE[upsample]

    def pair(t: str, ref: str) -> str:
        a, b = up.format(t=t, ref=ref), ref
        return f"[{b}, {a}]" if skip_first else f"[{a}, {b}]"

    dec_init, dec_fwd = DECODER[decoder]
    dec_fwd = dec_fwd.format(pair_loop=pair("out", "skip"), pair_stem=pair("out", "s"),
                             pair_d2=pair("f3", "f2"), pair_d1=pair("d2", "f1"), pair_stem1=pair("d1", "s"))
    helpers = (STEM_HELPER if stem == "helper" else "") + (STAGE_HELPER if stages == "helper" else "")
    return (f"{helpers}class SegmentationModel(nn.Module):\n"
            "    def __init__(self, num_classes=21, width=32, num_blocks=2, downsample=True, in_channels=3):\n"
            "        super().__init__()\n"
            "        self.downsample = downsample\n"
            f"{stem_init}{stage_init}"
            "        if downsample:\n"
            f"{dec_init}{up_init}"
            "        self.head = nn.Conv2d(2 * width if downsample else width, num_classes, 1)\n\n"
            "    def forward(self, x):\n"
            f"        s = {stem_expr}\n"
            f"{stage_fwd}"
            "        if not self.downsample:\n"
            "            return self.head(f3)\n"
            f"{dec_fwd}"
            "        return self.head(out)\n")


# --- the class ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Student:
    """One honest student: a name, the source of each code cell and the choices that made it."""

    name: str
    residual_block: str
    segmentation_model: str
    choices: str

    @property
    def cells(self) -> dict[str, str]:
        return {"residual_block": self.residual_block, "segmentation_model": self.segmentation_model}


def _hand_written() -> list[Student]:
    """The reference solution and the two hand-written alternatives of each cell from the structure tests."""
    sys.path.insert(0, str(ROOT / "tests"))
    import test_hw_structure_checks as alt

    ref_block, ref_model = alt.reference_block("ResidualBlock"), alt.reference_block("SegmentationModel")
    blocks = [ref_block] + [textwrap.dedent(alt.BLOCK_ALTERNATIVES[k]).strip() + "\n" for k in sorted(alt.BLOCK_ALTERNATIVES)]
    models = [ref_model] + [textwrap.dedent(alt.MODEL_ALTERNATIVES[k]).strip() + "\n" for k in sorted(alt.MODEL_ALTERNATIVES)]
    return [Student(f"hand{i}", b, m, f"hand-written {i}") for i, (b, m) in enumerate(zip(blocks, models))]


def honest_class(size: int, seed: int = 2026) -> list[Student]:
    """``size`` honest students: the three hand-written pairs, then students whose every choice is drawn
    independently; no two students hand in the same text for a cell (a repeated draw is drawn again)."""
    rng = random.Random(seed)
    students = _hand_written()[:size]
    seen_blocks = {s.residual_block for s in students}
    seen_models = {s.segmentation_model for s in students}
    while len(students) < size:
        block_choice = (rng.choice(sorted(CONV)), rng.choice(sorted(SHORTCUT)), rng.choice(sorted(ACT)),
                        rng.choice(sorted(FORWARD)))
        model_choice = (rng.choice(sorted(STEM)), rng.choice(sorted(STAGES)), rng.choice(sorted(UPSAMPLE)),
                        rng.choice(sorted(DECODER)), rng.random() < 0.5)
        block, model = residual_block(*block_choice), segmentation_model(*model_choice)
        if block in seen_blocks or model in seen_models:
            continue
        seen_blocks.add(block)
        seen_models.add(model)
        students.append(Student(f"s{len(students):02d}", block, model, f"{block_choice} {model_choice}"))
    return students


def namespace(student: Student) -> dict:
    """The student's two cells executed as the notebook's set-up cell leaves the namespace (torch, nn, F)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    ns = {"torch": torch, "nn": nn, "F": F, "__name__": f"student_{student.name}"}
    exec(compile(student.residual_block, f"<{student.name}:residual_block>", "exec"), ns)
    exec(compile(student.segmentation_model, f"<{student.name}:segmentation_model>", "exec"), ns)
    return ns


def check_implementation(student: Student) -> None:
    """Raises AssertionError unless both cells earn every point of the homework's real checks."""
    from autograder.assignment import CheckContext
    from autograder.checks import segmentation_hw_probes as probes
    from autograder.checks.segmentation_hw import CHECKS
    from autograder.judge import run_check

    ns = namespace(student)
    for probe, check in (("residual_block", "test_residual_block"), ("segmentation_model", "test_segmentation_model")):
        result = run_check(check, CHECKS[check], {probe: getattr(probes, f"probe_{probe}")(ns)}, CheckContext())
        assert result.fraction == 1.0, f"{student.name} ({student.choices}) fails {check}: {result.message}"


def student_notebook(release_notebook: Path, student: Student):
    """The release notebook with the student's two cells written in (``nbformat`` node)."""
    import nbformat

    nb = nbformat.read(release_notebook, as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in student.cells:
            cell.source = _keep_docstring(cell.source, student.cells[gid])
    return nb


def _keep_docstring(stub: str, code: str) -> str:
    """The student's code with the release's class docstring kept under its class line, as students leave it."""
    doc = re.search(r'(    """.*?"""\n)', stub, re.S)
    if not doc:
        return code
    name = re.search(r"^class (\w+)\(nn\.Module\):\n", stub, re.M).group(1)
    return re.sub(rf"^(class {name}\(nn\.Module\):\n)", lambda m: m.group(1) + doc.group(1) + "\n", code, count=1,
                  flags=re.M)


if __name__ == "__main__":
    for student in honest_class(int(sys.argv[1]) if len(sys.argv) > 1 else 24):
        check_implementation(student)
        print(f"{student.name}: ok  {student.choices}")
